"""buildkit inspect: the build info embedded in an artifact."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_common, emit_json


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_common(p)
    p.add_argument("artifact", type=Path, metavar="ARTIFACT")


def run(args: argparse.Namespace) -> int:
    from .. import buildinfo

    info = buildinfo.read(args.artifact)
    if args.json:
        emit_json(info)
        return 0
    for key in sorted(info):
        value = info[key]
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in sorted(value.items()))
        elif isinstance(value, list):
            value = "\n" + "\n".join(f"    {v}" for v in value) if value else "(none)"
        print(f"{key:>15}: {value}")
    return 0
