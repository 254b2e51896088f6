"""Debian roots of foreign architectures, made with debootstrap (second stage under QEMU)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from ..errors import ToolError
from ..tools import run
from . import HostSpec

log = logging.getLogger(__name__)

MIRROR = "http://deb.debian.org/debian"


def create(spec: HostSpec, root: Path, *, mirror: str | None = None) -> dict[str, str]:
    """Fill ``root`` (an empty folder); return what it was made from, for the record."""
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        raise ToolError(
            "debootstrap is not installed: it makes the Debian root of an emulated host",
            hint="install it: apt-get install debootstrap (ci/setup does)",
        )
    source = mirror or MIRROR
    log.info(
        "host %s: debootstrap %s %s from %s (a few minutes under emulation)",
        spec.name,
        spec.suite,
        spec.arch,
        source,
        extra={"step": "host"},
    )
    include = [f"--include={','.join(spec.packages)}"] if spec.packages else []
    cmd: list[str | Path] = [
        debootstrap, f"--arch={spec.arch}", "--variant=minbase", *include,
        spec.suite, root, source,
    ]  # fmt: skip
    proc = run(cmd, what=f"debootstrap of the {spec.name} root", check=False, timeout=3600)
    if proc.returncode != 0:
        log_file = root / "debootstrap" / "debootstrap.log"
        detail = log_file.read_text(errors="replace") if log_file.is_file() else ""
        tail = "\n".join(
            (detail + (proc.stderr or "") + (proc.stdout or "")).strip().splitlines()[-12:]
        )
        raise ToolError(
            f"debootstrap could not make the {spec.name} root ({spec.suite} {spec.arch} from "
            f"{source}; exit {proc.returncode}):\n{tail}",
            hint="check that the mirror is reachable (--mirror URL to use another one); "
            "nothing was kept",
        )
    for leftover in (root / "var" / "cache" / "apt" / "archives").glob("*.deb"):
        leftover.unlink()
    versions = installed(root)
    named = ", ".join(f"{name} {versions.get(name, '?')}" for name in spec.packages)
    return {"suite": spec.suite, "arch": spec.arch, "mirror": source, "packages": named}


def installed(root: Path) -> dict[str, str]:
    """Package -> version of every package installed in a Debian root (its dpkg status)."""
    out: dict[str, str] = {}
    status = root / "var" / "lib" / "dpkg" / "status"
    for stanza in status.read_text(encoding="utf-8", errors="replace").split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in stanza.splitlines() if ": " in line and line[0] != " "
        )
        if fields.get("Status", "").endswith(" installed") and "Package" in fields:
            out[fields["Package"]] = fields.get("Version", "")
    return out
