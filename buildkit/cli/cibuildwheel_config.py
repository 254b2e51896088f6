"""buildkit cibuildwheel-config: cibuildwheel's configuration for the native packages."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

from .common import add_common, emit_json, load_recipe


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_common(p)
    p.add_argument("recipe", type=Path, metavar="RECIPE", help="recipe folder or recipe.toml")
    p.add_argument("--out", type=Path, metavar="FILE", help="write here (default: stdout)")


def run(args: argparse.Namespace) -> int:
    from .. import cibw
    from ..fsutil import atomic_write_text, output_errors

    recipe = load_recipe(args.recipe)
    text = cibw.config(recipe)
    if args.json:
        emit_json(
            {
                "packages": list(recipe.native),
                "builds": [asdict(b) for b in cibw.builds(recipe)],
                "config": text,
            }
        )
    elif args.out is None:
        sys.stdout.write(text)
    else:
        with output_errors(args.out.parent):
            atomic_write_text(args.out, text)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0
