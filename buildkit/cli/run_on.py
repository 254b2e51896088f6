"""buildkit run-on: run an artifact on an emulated host."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_cache_dir, add_common, cache
from .host import CACHE_HELP, host_names


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_common(p)
    add_cache_dir(p, CACHE_HELP)
    p.add_argument("host", metavar="HOST", help=host_names())
    p.add_argument("artifact", type=Path, metavar="ARTIFACT")
    p.add_argument("args", nargs="*", metavar="ARGS", help="after --: the program's arguments")
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="repeatable: set a variable for the program",
    )


def run(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..hosts.runon import run_on

    env = {}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"--env {item!r}: expected NAME=VALUE")
        env[key] = value
    return run_on(args.host, args.artifact, args.args, cache(args), env=env)
