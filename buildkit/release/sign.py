"""SSH signatures over SHA256SUMS, made and checked with OpenSSH's ``ssh-keygen -Y``.

A bastion host with nothing but OpenSSH 8.1+ checks a release with::

    ssh-keygen -Y verify -f allowed_signers -I ID -n file -s SHA256SUMS.sig < SHA256SUMS

Only the key's path is ever passed on (to ssh-keygen); its contents never enter a log, a
report or the manifest. The signature is made on a copy outside the release folder and
moved in whole, so a failed signing leaves no partial ``SHA256SUMS.sig``.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .. import tools
from ..errors import InputError
from ..fsutil import atomic_copy, folder_lock
from . import checksums

log = logging.getLogger(__name__)

FILENAME = checksums.FILENAME + ".sig"
NAMESPACE = "file"
_HINT = (
    "give an OpenSSH private key file readable only by you (chmod 600), e.g. one made with "
    "`ssh-keygen -t ed25519 -f release-key`; an encrypted key needs a running ssh-agent "
    "holding it (SSH_AUTH_SOCK)"
)


def _ssh_keygen() -> str:
    found = shutil.which("ssh-keygen")
    if found is None:
        raise InputError(
            "ssh-keygen is not installed", hint="install OpenSSH (Debian: openssh-client)"
        )
    return found


def check_key(key: Path) -> None:
    """Fail early (before any build work) when the signing key cannot be used."""
    if not key.is_file():
        raise InputError(f"signing key {key} is not a file", hint=_HINT)
    _ssh_keygen()


def sign(release: Path, key: Path) -> Path:
    """Sign ``release/SHA256SUMS`` with ``key``; write ``release/SHA256SUMS.sig`` (under
    the folder's lock: no build changes SHA256SUMS meanwhile)."""
    check_key(key)
    _require_sums(release)  # before the lock, which would make a missing folder
    with folder_lock(release):
        return sign_held(release, key)


def _require_sums(release: Path) -> None:
    sums = release / checksums.FILENAME
    if not sums.is_file():
        raise InputError(f"{sums} does not exist", hint="sign a release folder built by buildkit")


def sign_held(release: Path, key: Path) -> Path:
    """``sign`` for a caller that holds the folder's lock, has checked the key and has
    just written SHA256SUMS (publish)."""
    sums = release / checksums.FILENAME
    with tempfile.TemporaryDirectory(prefix="buildkit-sign-") as tmp:
        copy = Path(tmp) / checksums.FILENAME
        shutil.copyfile(sums, copy)
        tools.run(
            [_ssh_keygen(), "-q", "-Y", "sign", "-f", key, "-n", NAMESPACE, copy],
            what=f"signing {sums}",
            hint=_HINT,
            env=_agent_env(),
            timeout=60,
        )
        dest = release / FILENAME
        atomic_copy(Path(str(copy) + ".sig"), dest)
    log.debug("signed %s: %s", sums, dest)
    return dest


def _agent_env() -> dict[str, str]:
    sock = os.environ.get("SSH_AUTH_SOCK")
    return {"SSH_AUTH_SOCK": sock} if sock else {}


@dataclass(frozen=True, kw_only=True)
class SignatureCheck:
    ok: bool
    detail: str  # ssh-keygen's own words


def check(release: Path, allowed_signers: Path | None, identity: str | None) -> SignatureCheck:
    """``ssh-keygen -Y verify`` against an allowed-signers file, or, without one, only
    that the signature is well formed and matches the file (``-Y check-novalidate``)."""
    sums, sig = release / checksums.FILENAME, release / FILENAME
    if not sig.is_file():
        return SignatureCheck(ok=False, detail=f"{FILENAME} is missing")
    if allowed_signers is not None:
        if not allowed_signers.is_file():
            raise InputError(
                f"allowed signers file {allowed_signers} does not exist",
                hint="one line per signer: '<identity> <key type> <public key>'",
            )
        if not identity:
            raise InputError(
                "--allowed-signers needs --identity", hint="the signer's identity, e.g. an email"
            )
        args: list[str | Path] = ["-Y", "verify", "-f", allowed_signers, "-I", identity]
    else:
        args = ["-Y", "check-novalidate"]
    proc = tools.run(
        [_ssh_keygen(), *args, "-n", NAMESPACE, "-s", sig],
        what=f"checking {sig}",
        stdin=sums,
        check=False,
        timeout=60,
    )
    words = " ".join((proc.stdout + proc.stderr).split())
    return SignatureCheck(ok=proc.returncode == 0, detail=words or f"exit {proc.returncode}")
