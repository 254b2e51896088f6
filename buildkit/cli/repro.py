"""buildkit repro: build twice under varied conditions and compare every file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from .common import (
    add_cache_dir,
    add_common,
    add_formats,
    add_recipe,
    cache,
    load_recipe,
    show,
)

if TYPE_CHECKING:
    from ..repro import ReproResult


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_common(p)
    add_recipe(p)
    add_formats(p)
    p.add_argument("--runs", type=int, default=2, metavar="N", help="builds (default: 2)")
    p.add_argument(
        "--out",
        type=Path,
        default=Path("repro"),
        metavar="DIR",
        help="where repro.json and diffoscope reports go (default: repro)",
    )
    add_cache_dir(
        p,
        "whose wheels (and, for the first build, tool caches) are used "
        "(default: $BUILDKIT_CACHE_DIR or ~/.cache/buildkit)",
    )
    p.add_argument(
        "--perturb",
        metavar="FILE",
        help="append a comment to FILE (relative to the recipe folder) in the later builds: "
        "shows what repro reports when something differs",
    )
    p.add_argument(
        "--python",
        type=Path,
        metavar="PYTHON",
        help="the interpreter (CPython 3.11+) that runs buildkit in the later builds, in a "
        "venv with the pinned toolkit (default: the first python3.X of another minor "
        "version than this one on PATH or among pyenv's versions; none: not varied; not "
        "varied by default when pex is among the formats: a .pex names the interpreter "
        "that ran pex)",
    )


def run(args: argparse.Namespace) -> int:
    from ..repro import check, repro

    result = repro(
        load_recipe(args.recipe),
        targets=args.target,
        formats=args.format,
        out=args.out,
        cache=cache(args),
        runs=args.runs,
        lockfiles=args.lockfiles,
        perturb=args.perturb,
        python=args.python,
    )
    show(args, result, _print)
    check(result)
    return 0


def _print(result: ReproResult) -> None:
    for c in result.conditions:
        note = f"  ({c.note})" if c.note else ""
        print(f"varied  {c.name}: {' | '.join(c.values)}{note}")
    for f in result.files:
        if f.same:
            print(f"same    {f.name}  sha256:{str(f.digests[0])[:16]}…")
        else:
            shown = " vs ".join(str(d)[:16] if d else "missing" for d in f.digests)
            report = f"  → {f.report}" if f.report else ""
            print(f"DIFFERS {f.name}  {shown}{report}")
    for s in result.skipped:
        print(f"skipped {s}")
    same = sum(f.same for f in result.files)
    print(f"{same} of {len(result.files)} files identical across {result.runs} builds")
