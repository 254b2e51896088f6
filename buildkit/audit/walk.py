"""Find the native files to audit: plain files, folders, zipapps (.pex/.pyz members, read
from the archive without extracting) and .tar.gz archives (nuitka standalone folders).

Yields ``(display path, bytes)`` for each ELF file; other native formats are listed as
not audited, with the reason, so nothing is silently left out.
"""

from __future__ import annotations

import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError

ELF = b"\x7fELF"
MACHO = (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xca\xfe\xba\xbe", b"\xbe\xba\xfe\xca")


@dataclass(frozen=True, kw_only=True)
class Native:
    path: str
    data: bytes


@dataclass(frozen=True, kw_only=True)
class NotAudited:
    path: str
    reason: str


def _classify(path: str, head: bytes) -> str | None:
    if head.startswith(ELF):
        return "elf"
    if head[:4] in MACHO:
        return "mach-o"
    return None


def _one(path: str, data: bytes) -> Iterator[Native | NotAudited]:
    kind = _classify(path, data[:4])
    if kind == "elf":
        yield Native(path=path, data=data)
    elif kind == "mach-o":
        yield NotAudited(path=path, reason="Mach-O: not audited by this version")


def walk(paths: list[Path]) -> Iterator[Native | NotAudited]:
    for root in paths:
        if not root.exists():
            raise InputError(f"{root}: no such file or folder")
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for path in files:
            yield from _file(path)


def _file(path: Path) -> Iterator[Native | NotAudited]:
    with path.open("rb") as f:
        head = f.read(4)
    if _classify(str(path), head) == "elf":
        yield from _one(str(path), path.read_bytes())  # a onefile binary: the outer file
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            for info in sorted(zf.infolist(), key=lambda i: i.filename):
                if info.is_dir():
                    continue
                with zf.open(info) as opened:
                    if _classify(info.filename, opened.read(4)) is None:
                        continue
                yield from _one(f"{path}!{info.filename}", zf.read(info))
    elif path.name.endswith((".tar.gz", ".tgz", ".tar")) and tarfile.is_tarfile(path):
        with tarfile.open(path) as tar:
            for entry in tar:
                content = tar.extractfile(entry) if entry.isfile() else None
                if content is not None:
                    yield from _one(f"{path}!{entry.name}", content.read())
    else:
        yield from _one(str(path), head)
