"""Check a wheel's contents before it is trusted: safe member names, and a RECORD that
lists every member with its true hash and size (PEP 376/427).

A wheel is a zip anyone can write. Its sha256 is pinned by the lock, but what the lock
pinned may itself be hostile: a member named ``../../etc/cron.d/x`` or ``/usr/bin/x``
would be written outside the install folder by a careless installer, and a RECORD that
does not match the files means the wheel was altered after it was built. Both are
refused before the wheel enters the cache.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import zipfile
from pathlib import Path, PurePosixPath

from .errors import IntegrityError
from .fsutil import ZIP_ERRORS

_HINT = "do not use this file; report it to the package's maintainers, then lock another version"


def _unsafe(name: str) -> str | None:
    """Why a member name could escape the folder it is unpacked into, or None."""
    if not name or "\0" in name:
        return "an empty name or a NUL byte"
    if name.startswith("/") or "\\" in name or (len(name) > 1 and name[1] == ":"):
        return "an absolute path or a backslash"
    if ".." in PurePosixPath(name).parts:
        return "a '..' part"
    return None


def _digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def check(path: Path, package: str) -> None:
    """Raise IntegrityError (naming ``package`` and the member) for a hostile wheel."""

    def refuse(problem: str) -> IntegrityError:
        return IntegrityError(f"{package}: the wheel {path.name} {problem}", hint=_HINT)

    try:
        zf = zipfile.ZipFile(path)
    except ZIP_ERRORS as exc:
        raise refuse(f"is not a readable zip: {exc}") from None
    with zf:
        infos = zf.infolist()
        for info in infos:
            if why := _unsafe(info.filename):
                raise refuse(f"has a member {info.filename!r} with {why}")
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise refuse(f"has a member {info.filename!r} that is a symbolic link")
        # The wheel's own metadata is the top-level ``<name>-<version>.dist-info/``; RECORD
        # files deeper down belong to packages it vendors (setuptools/_vendor/...) and are
        # plain members, listed in the top-level RECORD like any other.
        records = [
            i.filename
            for i in infos
            if i.filename.count("/") == 1 and i.filename.endswith(".dist-info/RECORD")
        ]
        if len(records) != 1:
            raise refuse(f"has {len(records)} top-level .dist-info/RECORD files (one is required)")
        try:
            rows = list(csv.reader(io.StringIO(zf.read(records[0]).decode("utf-8"))))
        except (UnicodeDecodeError, csv.Error, *ZIP_ERRORS) as exc:
            raise refuse(f"has an unreadable RECORD: {exc}") from None
        listed: dict[str, tuple[str, str]] = {}
        for row in rows:
            if not row:
                continue
            if len(row) != 3:
                raise refuse(f"has a RECORD line that is not 'path,hash,size': {row!r}")
            listed[row[0]] = (row[1], row[2])
        members = {i.filename for i in infos if not i.is_dir()}
        for name in sorted(members - {records[0]}):
            if name not in listed:
                raise refuse(f"has a member {name!r} that its RECORD does not list")
            algo_digest, size = listed[name]
            if not algo_digest.startswith("sha256="):
                raise refuse(f"lists {name!r} in RECORD without a sha256 hash")
            try:
                data = zf.read(name)
            except ZIP_ERRORS as exc:
                raise refuse(f"has a member {name!r} that cannot be read: {exc}") from None
            if _digest(data) != algo_digest or (size and size != str(len(data))):
                raise refuse(f"has a member {name!r} whose bytes do not match its RECORD")
        for name in sorted(set(listed) - members - {records[0]}):
            raise refuse(f"lists {name!r} in RECORD, but has no such member")
