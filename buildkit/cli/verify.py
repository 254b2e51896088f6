"""buildkit verify: check a release folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_common, emit_json


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_common(p)
    p.add_argument("folder", type=Path, metavar="DIR")
    p.add_argument(
        "--allowed-signers",
        type=Path,
        metavar="FILE",
        help="OpenSSH allowed signers file: check who signed (needs --identity)",
    )
    p.add_argument(
        "--identity", metavar="ID", help="the signer's identity in that file (needs the file)"
    )
    p.add_argument(
        "--require-signature",
        action="store_true",
        help="fail when SHA256SUMS.sig is missing (needs --allowed-signers)",
    )
    p.add_argument(
        "--artifact",
        action="append",
        default=[],
        metavar="NAME",
        help="check only this downloaded artifact (repeatable): its SHA256SUMS line, the "
        "signature, its manifest entry and contents; other release files may be absent",
    )


def run(args: argparse.Namespace) -> int:
    from ..errors import CheckFailed
    from ..release.verify import verify

    result = verify(
        args.folder,
        allowed_signers=args.allowed_signers,
        identity=args.identity,
        require_signature=args.require_signature,
        artifacts=tuple(args.artifact),
    )
    if args.json:
        emit_json(result.to_json())
    else:
        for item in result.items:
            print(item.line())
        print(result.summary())
    if not result.ok:
        raise CheckFailed(
            f"verification failed: {result.headline()}",
            hint="do not use this release; fetch it again from the team's release page",
        )
    return 0
