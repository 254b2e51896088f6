"""buildkit host: the emulated hosts of foreign targets (create, status, remove)."""

from __future__ import annotations

import argparse

from .common import EPILOG, add_cache_dir, add_common, cache, emit_json

HELP = "emulated hosts of foreign targets (QEMU): create, status, remove"
DESCRIPTION = (
    "Emulated hosts are roots of foreign targets that run "
    "on this machine under QEMU user emulation (binfmt_misc): run artifacts there with "
    "run-on, build native binaries there with build --builder. They need root, "
    "qemu-user-static and (for Debian roots) debootstrap."
)
CACHE_HELP = (
    "where the roots live, under hosts/ (default: $BUILDKIT_CACHE_DIR or ~/.cache/buildkit)"
)


def host_names() -> str:
    from .. import hosts

    return ", ".join(hosts.all_hosts())


def add_arguments(p: argparse.ArgumentParser) -> None:
    names = host_names()
    p.description = f"{DESCRIPTION} Hosts: {names}."
    steps = p.add_subparsers(dest="host_command", required=True, metavar="STEP")
    hc = steps.add_parser(
        "create",
        help="make a host's root (reused when a good one exists)",
        description="Make the root of an emulated host in the cache (hosts/NAME/): "
        "linux-arm64 is a Debian bookworm arm64 root made with debootstrap; alpine-arm64 is "
        "a musl aarch64 root holding a CPython cross-compiled from pinned sources. A good "
        "existing root is reused; one that fails its check is made again. Mounts "
        "binfmt_misc and registers QEMU when needed. On any error nothing is kept.",
        epilog=EPILOG,
    )
    hc.add_argument("name", metavar="NAME", help=names)
    hc.add_argument("--force", action="store_true", help="make it again even if it is good")
    hc.add_argument(
        "--mirror", metavar="URL", help="Debian mirror for debootstrap (default: deb.debian.org)"
    )
    hs = steps.add_parser(
        "status",
        help="check the hosts' roots",
        description="Check each host's root (or the ones named): present, made from the "
        "current spec, and its interpreter runs under emulation. Exit 1 when one is not.",
        epilog=EPILOG,
    )
    hs.add_argument("names", nargs="*", metavar="NAME", help=names)
    hr = steps.add_parser(
        "remove",
        help="delete a host's root",
        description="Delete an emulated host's root (and its builder toolkits) from the cache.",
        epilog=EPILOG,
    )
    hr.add_argument("name", metavar="NAME", help=names)
    for step in (hc, hs, hr):
        add_common(step)
        add_cache_dir(step, CACHE_HELP)


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
