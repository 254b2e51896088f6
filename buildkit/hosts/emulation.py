"""What emulated hosts need from this machine: root, binfmt_misc, a QEMU user emulator.

Foreign executables run because the kernel hands them to ``qemu-<arch>-static`` through a
binfmt_misc entry registered with the F flag (the emulator is opened once, at
registration, so it need not exist inside the root). buildkit mounts binfmt_misc and
registers or enables the entry when it can, and otherwise says what is missing.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from ..errors import InputError, ToolError
from ..tools import run

log = logging.getLogger(__name__)

BINFMT = Path("/proc/sys/fs/binfmt_misc")

# ELF header magic and mask per QEMU architecture (as in QEMU's qemu-binfmt-conf.sh).
_ELF = {
    "aarch64": (
        r"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00",
        r"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff",
    ),
}


def require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise InputError(
            f"{what} needs root: it uses chroot, mount namespaces and binfmt_misc "
            f"(running as uid {os.geteuid()})",
            hint="run it as root (sudo, or a CI job running as root)",
        )


def emulator(qemu: str) -> Path:
    """The static QEMU user emulator for ``qemu`` (e.g. aarch64)."""
    for name in (f"qemu-{qemu}-static", f"qemu-{qemu}"):
        found = shutil.which(name)
        if found:
            return Path(found)
    raise ToolError(
        f"no QEMU user emulator for {qemu}: qemu-{qemu}-static is not installed",
        hint="install it: apt-get install qemu-user-static (ci/setup does)",
    )


def ensure_binfmt(qemu: str, binfmt: Path = BINFMT) -> None:
    """Make sure the kernel runs ``qemu`` executables through QEMU (mount, register, enable)."""
    if not (binfmt / "status").exists():
        log.info("mounting binfmt_misc at %s", binfmt, extra={"step": "host"})
        proc = run(
            ["mount", "-t", "binfmt_misc", "binfmt_misc", binfmt],
            what="mounting binfmt_misc",
            check=False,
        )
        if proc.returncode != 0 or not (binfmt / "status").exists():
            detail = (proc.stderr or proc.stdout).strip() or f"exit {proc.returncode}"
            raise ToolError(
                f"binfmt_misc is not available: {binfmt} is not mounted and mounting it "
                f"failed ({detail}); the kernel cannot hand {qemu} programs to QEMU",
                hint="run on a machine (or privileged container) where "
                f"`mount -t binfmt_misc binfmt_misc {binfmt}` works",
            )
    entry = binfmt / f"qemu-{qemu}"
    if not entry.exists():
        qemu_path = emulator(qemu)
        magic, mask = _ELF[qemu]
        rule = f":qemu-{qemu}:M::{magic}:{mask}:{qemu_path}:F"
        log.info("registering %s for %s programs", qemu_path, qemu, extra={"step": "host"})
        try:
            (binfmt / "register").write_text(rule)
        except OSError as exc:
            raise ToolError(
                f"cannot register QEMU for {qemu} programs in {binfmt}/register: {exc}",
                hint=f"update-binfmts --enable qemu-{qemu} (package binfmt-support)",
            ) from exc
    lines = entry.read_text().splitlines()
    if lines and lines[0] == "disabled":
        entry.write_text("1")
    flags = next((line.split()[1] for line in lines if line.startswith("flags:")), "")
    if "F" not in flags:
        raise ToolError(
            f"{entry} is registered without the F flag: QEMU would have to exist inside every root",
            hint=f"re-register it: echo -1 > {entry}; then re-run (buildkit registers it with F)",
        )
