"""What a zipapp actually holds, against what its manifest entry says it was built from.

A pex lists each installed wheel as a ``.deps/<wheel file name>/`` folder; a shiv
zipapp as ``site-packages/<name>-<version>.dist-info/``. Every distribution found must be
one of the wheels the manifest records for that artifact (or the recipe's own native
packages among them), and every recorded wheel must be there: code from a wheel no lock
pinned (a ``.pth`` that runs at every start) is named, even when the release's digests
all agree with each other. Only the zip's central directory is read, within limits.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from packaging.utils import (
    InvalidWheelFilename,
    canonicalize_name,
    canonicalize_version,
    parse_wheel_filename,
)

from ..fsutil import ZIP_ERRORS

#: A zipapp of an ops script holds thousands of members, not millions.
MAX_MEMBERS = 200_000
FORMATS = ("pex", "shiv")


def _key(name: str, version: str) -> str:
    return f"{canonicalize_name(name)}=={canonicalize_version(version)}"


def recorded(wheels: object) -> set[str] | None:
    """``name==version`` of each wheel a manifest entry records (None: not a list)."""
    if not isinstance(wheels, list):
        return None
    found = set()
    for entry in wheels:
        filename = str(entry).split(" ", 1)[0]
        try:
            name, version, _, _ = parse_wheel_filename(filename)
        except InvalidWheelFilename:
            return None
        found.add(_key(name, str(version)))
    return found


def installed(path: Path, fmt: str) -> set[str]:
    """``name==version`` of each distribution inside a pex or shiv zipapp.
    Raises ValueError naming what is wrong with an unreadable or oversized file."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except ZIP_ERRORS as exc:
        raise ValueError(f"not a readable zipapp: {exc}") from None
    if len(names) > MAX_MEMBERS:
        raise ValueError(f"more than {MAX_MEMBERS} members")
    found = set()
    for member in names:
        parts = member.split("/")
        if fmt == "pex" and len(parts) > 2 and parts[0] == ".deps":
            try:
                name, version, _, _ = parse_wheel_filename(parts[1])
            except InvalidWheelFilename:
                raise ValueError(f"{parts[1]!r} under .deps/ is not a wheel name") from None
            found.add(_key(name, str(version)))
        elif (
            fmt == "shiv"
            and len(parts) > 2
            and parts[0] == "site-packages"
            and parts[1].endswith(".dist-info")
        ):
            stem = parts[1].removesuffix(".dist-info")
            project, _, release = stem.rpartition("-")
            found.add(_key(project or stem, release))
    return found


def compare(path: Path, fmt: str, wheels: object) -> tuple[bool, str]:
    """(ok, detail) for the artifact at ``path`` and its manifest entry's wheels."""
    want = recorded(wheels)
    if want is None:
        return False, "manifest.json records no readable wheel list for it"
    try:
        have = installed(path, fmt)
    except ValueError as exc:
        return False, str(exc)
    extra, missing = sorted(have - want), sorted(want - have)
    if extra or missing:
        problems = [f"holds {', '.join(extra)}, which manifest.json does not record"] * bool(extra)
        problems += [f"lacks {', '.join(missing)}, which manifest.json records"] * bool(missing)
        return False, "; ".join(problems)
    return True, f"{len(have)} distribution(s), each recorded"
