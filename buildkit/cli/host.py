"""buildkit host: the emulated hosts of foreign targets (create, status, remove)."""

from __future__ import annotations

import argparse

from .common import add_cache_dir, add_common, cache, emit_json, step

CACHE_HELP = (
    "where the roots live, under hosts/ (default: $BUILDKIT_CACHE_DIR or ~/.cache/buildkit)"
)


def host_names() -> str:
    from .. import hosts

    return ", ".join(hosts.all_hosts())


def add_arguments(p: argparse.ArgumentParser) -> None:
    names = host_names()
    p.description = f"{p.description} Hosts: {names}."
    steps = p.add_subparsers(dest="host_command", required=True, metavar="STEP")
    hc = step(steps, "host", "create")
    hc.add_argument("name", metavar="NAME", help=names)
    hc.add_argument("--force", action="store_true", help="make it again even if it is good")
    hc.add_argument(
        "--mirror", metavar="URL", help="Debian mirror for debootstrap (default: deb.debian.org)"
    )
    hs = step(steps, "host", "status")
    hs.add_argument("names", nargs="*", metavar="NAME", help=names)
    hr = step(steps, "host", "remove")
    hr.add_argument("name", metavar="NAME", help=names)
    for each in (hc, hs, hr):
        add_common(each)
        add_cache_dir(each, CACHE_HELP)


def run(args: argparse.Namespace) -> int:
    from .. import hosts
    from ..errors import CheckFailed
    from ..hosts import store

    where = cache(args)
    if args.host_command == "create":
        host = store.create(hosts.get(args.name), where, force=args.force, mirror=args.mirror)
        if args.json:
            emit_json({"name": args.name, "root": str(host.root)})
        else:
            print(f"host {args.name}: {host.root}")
        return 0
    if args.host_command == "remove":
        removed = store.remove(hosts.get(args.name), where)
        if not args.json:
            print(f"removed {removed}" if removed else f"host {args.name}: not created")
        return 0
    specs = [hosts.get(n) for n in args.names] if args.names else list(hosts.all_hosts().values())
    states = [store.status(spec, where) for spec in specs]
    if args.json:
        emit_json([s.to_json() for s in states])
    else:
        for st in states:
            print(f"{'ok' if st.ok else 'NOT OK':<7} {st.name:<14} {st.detail}  ({st.folder})")
    if not all(st.ok for st in states):
        raise CheckFailed(
            "not every host is ready: " + ", ".join(s.name for s in states if not s.ok),
            hint="make them: buildkit host create NAME",
        )
    return 0
