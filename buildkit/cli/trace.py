"""buildkit trace: add the calls a manual run makes to the recipe's seccomp additions."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_common, emit_json


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_common(p)
    p.add_argument("recipe", type=Path, metavar="RECIPE", help="recipe folder or recipe.toml")
    p.add_argument("args", nargs="*", metavar="ARGS", help="after --: the program's arguments")
    p.add_argument(
        "--artifact",
        type=Path,
        metavar="FILE",
        help="the artifact to run (default: the recipe's native binary for this machine in --out)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("dist"),
        metavar="DIR",
        help="the release folder: its profile for this machine's target is what is allowed "
        "already (default: dist)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the calls to add; change nothing")


def run(args: argparse.Namespace) -> int:
    from .. import targets
    from ..seccomp.trace import trace
    from .common import load_recipe

    recipe = load_recipe(args.recipe)
    target = next(t for t in targets.all_targets().values() if t.is_host())
    stem = f"{recipe.name}-{recipe.version}-{target.name}"
    artifact = args.artifact or args.out / stem
    done = trace(
        args.recipe,
        artifact,
        args.args,
        profile=args.out / f"{stem}.seccomp.json",
        write=not args.dry_run,
        stdout_to_stderr=args.json,
    )
    if args.json:
        emit_json(done.to_json())
    elif not done.missing:
        print(f"{len(done.calls)} calls, all allowed already by {stem}'s profile and the recipe")
    else:
        verb = "added to" if done.written else "to add to"
        print(f"{len(done.missing)} call(s) {verb} [hardening].seccomp_allow in {recipe.path}:")
        print("  " + " ".join(done.missing))
        if done.written:
            print("build again to allow them")
    return 0
