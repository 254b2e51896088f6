"""Build info embedded in every artifact, and reading it back without running the artifact.

Zipapps carry it as a JSON member named ``__buildkit__.json`` (at the archive root for
pex, under ``site-packages/`` for shiv); nuitka standalone archives under their top
folder; nuitka onefile binaries carry the same file in their payload: stored, it is found by
its first line; compressed (``compress = "zstd"``), the payload is inflated, bounded.
"""

from __future__ import annotations

import json
import mmap
import os
import stat
import tarfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from . import onefile
from .errors import InputError
from .fsutil import ZIP_ERRORS, escaped

MEMBER = "__buildkit__.json"
SCHEMA_KEY = "_schema"
SCHEMA = "buildkit-info/1"
_MARKER = f'{{\n  "{SCHEMA_KEY}": "{SCHEMA}"'.encode()


@dataclass(frozen=True, kw_only=True)
class BuildInfo:
    recipe: str
    version: str
    target: str
    format: str
    python: str
    entry: str
    lock_digest: str
    sources_digest: str
    wheels: tuple[str, ...]  # "<filename> sha256:<hex>"
    toolkit: str
    tools: tuple[tuple[str, str], ...]
    settings: tuple[tuple[str, str], ...] = ()  # backend settings (mode, compiler flags)
    native: tuple[str, ...] = ()  # wheels of the recipe's own native packages (by name)

    def to_json(self) -> str:
        doc = asdict(self)
        doc["tools"] = dict(self.tools)
        doc["wheels"] = list(self.wheels)
        doc["settings"] = dict(self.settings)
        if self.native:
            doc["native"] = list(self.native)
        else:
            del doc["native"]
        # The schema key first: inspect finds it in binaries that are not archives.
        return json.dumps({SCHEMA_KEY: SCHEMA, **dict(sorted(doc.items()))}, indent=2) + "\n"


#: Limits for reading an artifact someone hands us: the largest artifact inspect reads,
#: the largest build info member, the most archive members it looks through.
MAX_ARTIFACT = 1 << 30
MAX_INFO = 1 << 20
MAX_MEMBERS = 200_000
_GZIP = b"\x1f\x8b"


def read(path: Path) -> dict[str, Any]:
    """The build info of an artifact, read from its bytes (never run), within limits: a
    regular file of at most MAX_ARTIFACT bytes; zip and tar.gz archives recognised by
    their signatures; the info member at most MAX_INFO bytes, checked as it is read."""
    shown = escaped(str(path))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise InputError(f"{shown}: cannot open: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise InputError(
                f"{shown}: not a regular file", hint="pass an artifact file built by buildkit"
            )
        if st.st_size > MAX_ARTIFACT:
            raise InputError(
                f"{shown}: {st.st_size} bytes, larger than any artifact buildkit reads "
                f"({MAX_ARTIFACT >> 20} MiB)",
                hint="pass a .pex, .pyz, .tar.gz or native binary built by buildkit",
            )
        if st.st_size == 0:
            raise InputError(f"{shown}: an empty file")
        try:
            doc = _from_zip(f, shown) if zipfile.is_zipfile(f) else None
            if doc is None:
                f.seek(0)
                head = f.read(2)
                doc = _from_tar(f, shown) if head == _GZIP else _from_binary(f, shown)
        except (*ZIP_ERRORS, tarfile.TarError) as exc:
            raise InputError(f"{shown}: unreadable archive: {exc}") from None
    if doc is not None:
        return doc
    raise InputError(
        f"{shown}: no buildkit build info inside",
        hint="pass a .pex, .pyz, .tar.gz or native binary built by buildkit",
    )


def _limited(raw: IO[bytes], shown: str) -> bytes:
    data = raw.read(MAX_INFO + 1)
    if len(data) > MAX_INFO:
        raise InputError(f"{shown}: its build info is larger than {MAX_INFO >> 10} KiB")
    return data


def _from_zip(f: IO[bytes], shown: str) -> dict[str, Any] | None:
    f.seek(0)
    with zipfile.ZipFile(f) as zf:
        infos = zf.infolist()
        if len(infos) > MAX_MEMBERS:
            raise InputError(f"{shown}: more than {MAX_MEMBERS} archive members")
        found = sorted(
            (i for i in infos if i.filename.rsplit("/", 1)[-1] == MEMBER),
            key=lambda i: i.filename.count("/"),
        )
        if not found:
            return None
        if found[0].file_size > MAX_INFO:
            raise InputError(
                f"{shown}: its build info member declares {found[0].file_size} bytes "
                f"(at most {MAX_INFO >> 10} KiB)"
            )
        with zf.open(found[0]) as member:
            return _decode(_limited(member, shown), shown)


def _from_tar(f: IO[bytes], shown: str) -> dict[str, Any] | None:
    f.seek(0)
    with tarfile.open(fileobj=f, mode="r:gz") as tar:
        for count, member in enumerate(tar):
            if count >= MAX_MEMBERS:
                raise InputError(f"{shown}: more than {MAX_MEMBERS} archive members")
            if (
                member.isfile()
                and member.name.count("/") == 1
                and member.name.endswith("/" + MEMBER)
            ):
                content = tar.extractfile(member)
                if content is not None:
                    return _decode(_limited(content, shown), shown)
    return None


def _from_binary(f: IO[bytes], shown: str) -> dict[str, Any] | None:
    """A onefile binary carries the file in its payload: stored, find its first line and
    decode what follows (at most MAX_INFO bytes); compressed, inflate the payload."""
    with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        at = data.find(_MARKER)
        if at < 0:
            return _from_compressed(data, shown)
        window = data[at : at + MAX_INFO].decode("utf-8", "replace")
    try:
        doc, _ = json.JSONDecoder().raw_decode(window)
    except (ValueError, RecursionError):
        raise InputError(f"{shown}: its build info is not valid JSON") from None
    return _check(doc, shown)


def _from_compressed(data: mmap.mmap, shown: str) -> dict[str, Any] | None:
    payload = onefile.read_payload(data)
    if isinstance(payload, str):
        raise InputError(f"{shown}: {payload}")
    if payload is None or payload.inflated is None:
        return None
    for entry in payload.entries:
        if entry.name == MEMBER:
            if entry.size > MAX_INFO:
                raise InputError(f"{shown}: its build info is larger than {MAX_INFO} bytes")
            return _decode(payload.blob(entry, data), shown)
    return None


def _decode(raw: bytes, shown: str) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        raise InputError(f"{shown}: its build info is not valid JSON") from None
    return _check(doc, shown)


def _check(doc: Any, shown: str) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise InputError(f"{shown}: its build info is not a JSON object")
    return doc
