"""The distribution package a system library in an artifact came from: the build host's
copy of the same file (by name, in the host's library folders; by content when several
match), then the package manager's answer for it (``dpkg-query -S`` on Debian and
Ubuntu, ``apk info -W`` on Alpine) with the package's version, as a purl
(``pkg:deb/debian/libssl3@3.0.15-1~deb12u1?arch=amd64``) a CVE scanner can use.

Only meaningful on the host that built the artifact: the build's release stage asks,
right after the build, and the manifest keeps the answer (``release assemble`` on
another machine reads it from there)."""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Collection
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

from .. import tools
from ..fsutil import sha256_regular
from .findings import Component, FileReport
from .run import AuditResult

log = logging.getLogger(__name__)

LIB_DIRS = (
    "/lib", "/usr/lib", "/lib64", "/usr/lib64", "/usr/local/lib",
    "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
)  # fmt: skip
_DPKG_OWNER = re.compile(
    r"^(?P<package>[a-z0-9][a-z0-9+.-]*)(:(?P<arch>[a-z0-9-]+))?: (?P<path>/.+)$"
)
_APK_OWNER = re.compile(r" is owned by (?P<package>\S+)-(?P<version>[^-\s]+-r\d+)$")


@dataclass(frozen=True, kw_only=True)
class Package:
    name: str
    version: str
    arch: str
    distro: str  # debian, ubuntu, alpine
    kind: str  # deb | apk
    path: str  # the host file it owns

    @property
    def purl(self) -> str:
        from packageurl import PackageURL

        qualifiers = {"arch": self.arch} if self.arch else {}
        return PackageURL(
            type=self.kind, namespace=self.distro, name=self.name, version=self.version,
            qualifiers=qualifiers,
        ).to_string()  # fmt: skip


@cache
def distro() -> str:
    """The host's distribution ID (os-release ``ID``), "" when unknown."""
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            text = Path(path).read_text(encoding="utf-8", errors="replace")[:8192]
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("ID="):
                return line[3:].strip().strip('"').lower()
    return ""


def owner(path: Path) -> Package | None:
    """The installed package that owns ``path`` on this host, with its version."""
    if shutil.which("dpkg-query"):
        return _dpkg(path)
    if shutil.which("apk"):
        return _apk(path)
    return None


def _dpkg(path: Path) -> Package | None:
    found = tools.run(["dpkg-query", "-S", str(path)], what="dpkg-query -S", check=False)
    for line in found.stdout.splitlines() if found.returncode == 0 else ():
        m = _DPKG_OWNER.match(line.strip())
        if m is None or "," in m["package"]:
            continue
        name = m["package"] + (f":{m['arch']}" if m["arch"] else "")
        shown = tools.run(
            ["dpkg-query", "-W", "-f", "${Version} ${Architecture}", name],
            what="dpkg-query -W",
            check=False,
        )
        version, _, arch = shown.stdout.strip().partition(" ")
        if shown.returncode == 0 and version:
            return Package(
                name=m["package"], version=version, arch=arch, distro=distro() or "debian",
                kind="deb", path=str(path),
            )  # fmt: skip
    return None


def _apk(path: Path) -> Package | None:
    found = tools.run(["apk", "info", "-W", str(path)], what="apk info -W", check=False)
    for line in found.stdout.splitlines() if found.returncode == 0 else ():
        m = _APK_OWNER.search(line.strip())
        if m is not None:
            arch = tools.run(["apk", "--print-arch"], what="apk --print-arch", check=False)
            return Package(
                name=m["package"], version=m["version"], arch=arch.stdout.strip(),
                distro=distro() or "alpine", kind="apk", path=str(path),
            )  # fmt: skip
    return None


def on_host(name: str, sha256: str) -> tuple[Path, bool] | None:
    """The host's copy of a library named ``name`` (a link resolved to the file it
    names), preferring one with the same bytes; and whether the bytes are the same."""
    if "/" in name or name in ("", ".", ".."):
        return None
    candidates: list[Path] = []
    for folder in LIB_DIRS:
        path = Path(folder) / name
        if path.exists():
            real = path.resolve()
            if real.is_file() and real not in candidates:
                candidates.append(real)
    same = [p for p in candidates if sha256 and _digest(p) == sha256]
    if same:
        return same[0], True
    return (candidates[0], False) if candidates else None


def _digest(path: Path) -> str:
    try:
        return sha256_regular(path)
    except OSError:
        return ""


def resolve(result: AuditResult, only: Collection[str] | None = None) -> AuditResult:
    """``result`` with each system library copied into an artifact (of ``only``, when
    given) traced to the build host's package: its purl as the source, the package and
    version as the origin."""

    def wanted(r: FileReport) -> bool:
        return (
            r.component is Component.SYSTEM
            and not r.source
            and bool(r.member)
            and (only is None or r.artifact in only)
        )

    files = tuple(_traced(r) if wanted(r) else r for r in result.files)
    return replace(result, files=files)


def _traced(report: FileReport) -> FileReport:
    name = report.member.replace("!", "/").rsplit("/", 1)[-1]
    found = on_host(name, report.sha256)
    package = owner(found[0]) if found else None
    if found is None or package is None:
        log.warning("%s: no package on this host owns a library of that name", report.path)
        return replace(report, origin="copied from the build host; no package owns it there")
    copy = "the same bytes" if found[1] else "a copy changed when it was bundled"
    origin = f"{package.name} {package.version} ({package.distro} package; {package.path}, {copy})"
    return replace(report, source=package.purl, origin=origin)
