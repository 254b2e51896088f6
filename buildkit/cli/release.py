"""buildkit release: assemble per-target release folders into one, or sign one."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import EPILOG, add_common, emit_json

HELP = "assemble or sign release folders"
DESCRIPTION = "Work on release folders: join per-target folders into one, sign one."


def add_arguments(p: argparse.ArgumentParser) -> None:
    steps = p.add_subparsers(dest="release_command", required=True, metavar="STEP")
    asm = steps.add_parser(
        "assemble",
        help="join per-target release folders from CI jobs into one release",
        description="Join release folders built by separate jobs (one per target) into one "
        "release in OUT (a new or empty folder): each input must verify; artifacts are "
        "merged by name and the same name with different bytes is refused; one manifest, "
        "SHA256SUMS, SBOM, provenance and hardening reports (every artifact audited again "
        "and gated with the policy the inputs recorded) are written. The result does not "
        "depend on the order of the inputs; on any error nothing is written.",
        epilog=EPILOG,
    )
    add_common(asm)
    asm.add_argument("out", type=Path, metavar="OUT")
    asm.add_argument("inputs", type=Path, nargs="+", metavar="DIR")
    asm.add_argument("--sign-key", type=Path, metavar="KEY", help="sign the merged SHA256SUMS")
    sgn = steps.add_parser(
        "sign",
        help="sign a release folder's SHA256SUMS",
        description="Sign DIR/SHA256SUMS with an OpenSSH key (ssh-keygen -Y sign -n file), "
        "writing DIR/SHA256SUMS.sig. Check with: ssh-keygen -Y verify -f allowed_signers "
        "-I ID -n file -s SHA256SUMS.sig < SHA256SUMS",
        epilog=EPILOG,
    )
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

    done = assemble(args.out, args.inputs, sign_key=args.sign_key)
    if args.json:
        emit_json(done.to_json())
    else:
        for name in done.artifacts:
            print(f"artifact  {name}")
        for path in done.files:
            print(f"wrote     {path}")
        print(f"assembled {len(done.artifacts)} artifact(s) from {len(done.inputs)} folder(s)")
    return 0
