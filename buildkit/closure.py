"""A lock's pins against what the recipe actually needs, read from the wheels' metadata.

``lock --check`` compares the pins with the recipe's own requirements; it cannot tell a
dependency from a stray pin, because a lock records no graph. Once the wheels are
fetched (each verified by hash) their ``Requires-Dist`` lines give the graph: starting
from the recipe's requirements and its native packages, every requirement reached (on
the target's markers, with the extras asked for) must be pinned at a version it allows,
and every pin must be reached. A pin nothing needs is code no one asked for; a dependency
nothing pins would be missing from the artifact (the backends install with
``--no-deps``).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path

from packaging.markers import InvalidMarker, UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from .errors import IntegrityError
from .fsutil import ZIP_ERRORS

#: A wheel's METADATA is a few KiB; one larger than this is not read.
MAX_METADATA = 4 << 20


@dataclass(frozen=True, kw_only=True)
class Dist:
    """One wheel as the graph sees it."""

    name: str  # canonical
    version: str
    requires: tuple[str, ...]  # Requires-Dist lines as written


def read_dist(path: Path) -> Dist:
    """Name, version and Requires-Dist of a wheel, from its top-level ``.dist-info``."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = [
                i
                for i in zf.infolist()
                if i.filename.count("/") == 1 and i.filename.endswith(".dist-info/METADATA")
            ]
            if len(infos) != 1 or infos[0].file_size > MAX_METADATA:
                raise IntegrityError(
                    f"{path.name}: expected one top-level .dist-info/METADATA of at most "
                    f"{MAX_METADATA >> 20} MiB, found {len(infos)}",
                    hint="do not use this wheel; lock another version",
                )
            text = zf.read(infos[0]).decode("utf-8", "replace")
    except ZIP_ERRORS as exc:
        raise IntegrityError(f"{path.name}: unreadable wheel: {exc}") from None
    meta = HeaderParser().parsestr(text)
    return Dist(
        name=canonicalize_name(meta.get("Name", "")),
        version=str(meta.get("Version", "")),
        requires=tuple(str(v) for v in (meta.get_all("Requires-Dist") or ())),
    )


def _applies(req: Requirement, env: dict[str, str], extras: Iterable[str]) -> bool:
    if req.marker is None:
        return True
    try:
        return any(req.marker.evaluate({**env, "extra": e}) for e in ("", *extras))
    except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName):
        return True


def problems(
    *,
    roots: Iterable[str],
    own: Iterable[Dist],
    pinned: dict[str, Dist],
    env: dict[str, str],
) -> list[str]:
    """What is wrong with ``pinned`` (canonical name → wheel) as the closure of ``roots``
    (the recipe's requirements) and ``own`` (its native packages' wheels), on ``env``."""
    found: list[str] = []
    reached: set[str] = set()
    todo: list[tuple[str, str]] = [(r, "the recipe") for r in roots]
    for package in own:
        reached.add(package.name)
        todo += [(r, f"{package.name} {package.version}") for r in package.requires]
    wanted: dict[str, set[str]] = {}  # the extras asked of each package so far
    while todo:
        text, by = todo.pop()
        try:
            req = Requirement(text)
        except InvalidRequirement:
            found.append(f"{by} declares an unreadable requirement {text!r}")
            continue
        if not _applies(req, env, wanted.get(_owner(by), ())):
            continue
        name = canonicalize_name(req.name)
        if name in reached and name not in pinned:
            continue  # one of the recipe's native packages
        dist = pinned.get(name)
        if dist is None:
            found.append(f"{name} is required by {by} ({text}) but not pinned")
            continue
        if not req.specifier.contains(dist.version, prereleases=True):
            found.append(f"{name}=={dist.version} does not satisfy {by}'s requirement {text}")
        extras = {canonicalize_name(e) for e in req.extras}
        before = wanted.get(name)
        if before is not None and extras <= before:
            continue
        wanted[name] = (before or set()) | extras
        reached.add(name)
        todo += [(r, f"{name} {dist.version}") for r in dist.requires]
    for stray in sorted(set(pinned) - reached):
        found.append(
            f"{stray}=={pinned[stray].version} is pinned, but neither the recipe nor any "
            "pinned package requires it"
        )
    return found


def _owner(by: str) -> str:
    return by.split(" ", 1)[0]
