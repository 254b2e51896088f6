"""buildkit lock: write (or check) the recipe's hash-pinned lockfiles."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from .common import add_common, add_recipe, emit_json, load_recipe


def add_arguments(p: argparse.ArgumentParser) -> None:
    from .. import lock

    add_common(p)
    add_recipe(p)
    p.add_argument("--check", action="store_true", help="check the locks, write nothing")
    p.add_argument(
        "--engine",
        choices=lock.ENGINES,
        default="uv",
        help="resolver: uv (any target, default) or pip-tools (this host's target only)",
    )


def run(args: argparse.Namespace) -> int:
    from .. import lock

    recipe = load_recipe(args.recipe)
    specs = [recipe.target(t) for t in args.target] if args.target else list(recipe.targets)
    if args.check:
        problems = lock.check_targets(recipe, specs, args.lockfiles)
        if args.json:
            emit_json(
                {
                    "ok": not problems,
                    "lockfiles": str(lock.lock_dir(recipe, args.lockfiles)),
                    "problems": [str(p) for p in problems],
                }
            )
        if problems:
            raise lock.check_failed(problems, args.recipe)
        if not args.json:
            for spec in specs:
                print(f"ok  {lock.lock_path(recipe, spec.name, args.lockfiles)}")
        return 0
    results = lock.lock_targets(recipe, specs, args.engine, args.lockfiles)
    if args.json:
        emit_json(
            {
                "ok": True,
                "lockfiles": str(lock.lock_dir(recipe, args.lockfiles)),
                "locks": [asdict(r) for r in results],
            }
        )
    for r in [] if args.json else results:
        print(f"{'wrote' if r.changed else 'unchanged'}  {r.path}  ({r.pins} pins)")
    return 0
