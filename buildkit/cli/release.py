"""buildkit release: assemble per-target release folders into one, or sign one."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from .common import add_common, emit_json, show, step

if TYPE_CHECKING:
    from ..release.assemble import Assembled


def add_arguments(p: argparse.ArgumentParser) -> None:
    steps = p.add_subparsers(dest="release_command", required=True, metavar="STEP")
    asm = step(steps, "release", "assemble")
    add_common(asm)
    asm.add_argument("out", type=Path, metavar="OUT")
    asm.add_argument("inputs", type=Path, nargs="+", metavar="DIR")
    asm.add_argument("--sign-key", type=Path, metavar="KEY", help="sign the merged SHA256SUMS")
    sgn = step(steps, "release", "sign")
    add_common(sgn)
    sgn.add_argument("folder", type=Path, metavar="DIR")
    sgn.add_argument("--key", type=Path, required=True, metavar="KEY")


def run(args: argparse.Namespace) -> int:
    if args.release_command == "sign":
        from ..release.sign import sign

        sig = sign(args.folder, args.key)
        if args.json:
            emit_json({"signature": str(sig)})
        else:
            print(f"signed: {sig}")
        return 0
    from ..release.assemble import assemble

    return show(args, assemble(args.out, args.inputs, sign_key=args.sign_key), _print)


def _print(done: Assembled) -> None:
    for name in done.artifacts:
        print(f"artifact  {name}")
    for path in done.files:
        print(f"wrote     {path}")
    print(f"assembled {len(done.artifacts)} artifact(s) from {len(done.inputs)} folder(s)")
