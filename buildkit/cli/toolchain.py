"""buildkit toolchain: the hermetic toolchain of native binaries (build, status)."""

from __future__ import annotations

import argparse

from .common import add_cache_dir, add_common, cache, emit_json, step

CACHE_HELP = (
    "where toolchains live, under toolchain/ (default: $BUILDKIT_CACHE_DIR or ~/.cache/buildkit)"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..toolchain import targets_with_toolchain

    names = ", ".join(targets_with_toolchain())
    p.description = f"{p.description} Targets with a toolchain: {names}."
    steps = p.add_subparsers(dest="toolchain_command", required=True, metavar="STEP")
    tb = step(steps, "toolchain", "build")
    tb.add_argument(
        "--target",
        action="append",
        metavar="T",
        help=f"{names} (default: this machine's own; another architecture's is "
        "cross-compiled here and checked on its emulated host, which must exist)",
    )
    tb.add_argument("--force", action="store_true", help="build it again even if it is good")
    ts = step(steps, "toolchain", "status")
    ts.add_argument("--target", action="append", metavar="T", help=f"{names} (default: all)")
    for each in (tb, ts):
        add_common(each)
        add_cache_dir(each, CACHE_HELP)


def run(args: argparse.Namespace) -> int:
    from .. import targets
    from ..errors import CheckFailed
    from ..toolchain import spec_for, store, targets_with_toolchain

    where = cache(args)
    every = [targets.get(t) for t in targets_with_toolchain()]
    if args.target:
        chosen = [targets.get(t) for t in args.target]
    elif args.toolchain_command == "build":
        chosen = [t for t in every if t.is_host()]
        if not chosen:
            raise CheckFailed(
                "no toolchain runs on this machine: "
                f"{'/'.join(targets.host_triple())} has none in the toolchain lock",
                hint="name one with --target (built here, checked on its emulated host)",
            )
    else:
        chosen = every
    for target in chosen:
        spec_for(target)  # a target without a toolchain is refused before any work
    if args.toolchain_command == "build":
        built = [store.ensure(t, where, force=args.force) for t in chosen]
        if args.json:
            emit_json([{"target": b.spec.target, "folder": str(b.folder)} for b in built])
        else:
            for b in built:
                print(f"toolchain {b.spec.target}: {b.folder}")
        return 0
    states = [store.status(t, where) for t in chosen]
    if args.json:
        emit_json([s.to_json() for s in states])
    else:
        for st in states:
            print(f"{'ok' if st.ok else 'NOT OK':<7} {st.target:<14} {st.detail}  ({st.folder})")
    if not all(st.ok for st in states):
        raise CheckFailed(
            "not every toolchain is built: " + ", ".join(s.target for s in states if not s.ok),
            hint="build them: buildkit toolchain build",
        )
    return 0
