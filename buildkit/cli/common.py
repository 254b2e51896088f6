"""What the commands share: the common options, the recipe arguments, JSON output."""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from collections.abc import Callable
from functools import cache as once
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from ..cache import Cache
    from ..recipe import Recipe

EPILOG = "Exit codes: 0 ok, 1 check failed, 2 bad input or usage, 3 a tool failed."


@once
def texts() -> dict[str, Any]:
    """The help texts of every command and step (``buildkit/data/commands.toml``)."""
    text = files("buildkit").joinpath("data/commands.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def step(sub: Any, *path: str) -> argparse.ArgumentParser:
    """Add the command (or a command's step) ``path`` to ``sub``, with its help texts."""
    entry = texts()
    for name in path:
        entry = entry[name]
    return sub.add_parser(  # type: ignore[no-any-return]
        path[-1], help=entry["help"], description=entry["description"], epilog=EPILOG
    )


class Result(Protocol):
    def to_json(self) -> Any: ...


R = TypeVar("R", bound=Result)


def show(args: argparse.Namespace, result: R, text: Callable[[R], None]) -> int:
    """The result as JSON with --json, else as ``text`` prints it; exit code 0."""
    if args.json:
        emit_json(result.to_json())
    else:
        text(result)
    return 0


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-v", "--verbose", action="store_true", help="log every command run")
    p.add_argument("--json", action="store_true", help="print a JSON result on stdout")


def add_recipe(p: argparse.ArgumentParser) -> None:
    """RECIPE, --target and --lockfiles (lock, build, repro)."""
    from .. import targets

    p.add_argument("recipe", type=Path, metavar="RECIPE", help="recipe folder or recipe.toml")
    p.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="T",
        help="repeatable; one of: " + ", ".join(targets.all_targets()) + " (default: the recipe's)",
    )
    p.add_argument(
        "--lockfiles",
        type=Path,
        metavar="DIR",
        help="lockfiles folder (default: lockfiles/ of the project holding the recipe)",
    )


def add_formats(p: argparse.ArgumentParser) -> None:
    from ..backends import registry

    p.add_argument(
        "--format",
        action="append",
        default=[],
        metavar="F",
        help="repeatable; one of: " + ", ".join(registry()) + " (default: the recipe's)",
    )


def add_cache_dir(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--cache-dir", type=Path, metavar="DIR", help=help)


def load_recipe(path: Path) -> Recipe:
    from .. import targets
    from ..backends import format_options
    from ..recipe import load

    return load(path, formats=format_options(), targets=targets.all_targets())


def cache(args: argparse.Namespace) -> Cache:
    from ..cache import Cache, default_root

    return Cache(root=args.cache_dir or default_root())


def emit_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")
