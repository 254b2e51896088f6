"""Which files of a release folder a signing build can vouch for.

``build --sign-key`` signs SHA256SUMS, and with it every file the folder already held
that this build kept. A signature says "we built these from these inputs", so a kept
file must have come from a build of the same recipe (name and version) and lock set:
its manifest entry names this recipe and the digest of the lock it was built from as it
is now, the build info inside the file says the same, and the artifact is in this
machine's action cache (a build here produced it). Anything else the folder lists, a
file of another recipe, an older lock, or a file only SHA256SUMS mentions, is foreign.
So is a listed document (profile, SBOM, provenance, report) that neither this build
writes afresh nor the kept artifacts call for: a planted allow-all profile for a target
the release has no binary for would otherwise be signed as it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from .. import buildinfo, lock
from ..cache import Cache
from ..errors import CheckFailed, InputError
from ..fsutil import escaped, sha256_file
from ..recipe import Recipe
from . import checksums, documents, manifest, profiles, provenance, sbom
from .manifest import ArtifactRecord


def foreign(
    out: Path,
    recipe: Recipe,
    rebuilt: Iterable[str],
    lock_paths: Mapping[str, Path],
    cache: Cache,
) -> list[tuple[str, str]]:
    """(name, why) of each file in ``out`` that a signing build of ``recipe`` would keep
    and sign without having produced it, sorted by name."""
    rebuilt = set(rebuilt)
    found: list[tuple[str, str]] = []
    entries = manifest.read(out)
    for name, entry in sorted(entries.items()):
        if name in rebuilt or not (out / name).is_file():
            continue
        if sha256_file(out / name) != entry.sha256:
            continue  # publish drops it: not signed
        if why := _why_foreign(out / name, entry, recipe, lock_paths, cache):
            found.append((name, why))
    try:
        listed = checksums.parse((out / checksums.FILENAME).read_text("utf-8"), out)
    except (OSError, UnicodeDecodeError, CheckFailed):
        listed = {}
    kept = {n: e for n, e in entries.items() if n not in rebuilt}
    wanted = documents.called_for(kept) | _rewritten(recipe, rebuilt)
    for name in sorted(listed):
        if name in entries or name in rebuilt or name == checksums.FILENAME:
            continue
        if not documents.is_document(name):
            found.append((name, "listed in SHA256SUMS, not an artifact of manifest.json"))
        elif name not in wanted:
            found.append((name, "a release document no artifact of this release calls for"))
    return found


def describe(found: list[tuple[str, str]]) -> str:
    return "; ".join(f"{escaped(name)} ({why})" for name, why in found)


def _rewritten(recipe: Recipe, rebuilt: set[str]) -> set[str]:
    """The documents a build of ``rebuilt`` writes afresh: the recipe version's SBOM,
    provenance and reports, and the profiles of the targets it builds."""
    stem = f"{recipe.name}-{recipe.version}"
    names = {sbom.filename(stem), provenance.filename(stem)}
    names |= {stem + suffix for suffix in documents.HARDENING_SUFFIXES}
    for target in recipe.targets:
        base = f"{stem}-{target.name}"
        if any(n == base or n.startswith(base + ".") for n in rebuilt):
            names |= {base + suffix for suffix in profiles.SUFFIXES}
    return names


def _why_foreign(
    path: Path,
    entry: ArtifactRecord,
    recipe: Recipe,
    lock_paths: Mapping[str, Path],
    cache: Cache,
) -> str | None:
    if (entry.recipe, entry.version) != (recipe.name, recipe.version):
        return f"built from {entry.recipe} {entry.version}"
    target = entry.target
    lock_path = lock_paths.get(target) or lock.lock_path(recipe, target)
    try:
        current = lock.file_digest(lock_path)
    except OSError:
        return f"no lock for {target} to compare with"
    if entry.lock_digest != current:
        return f"built from another version of {lock_path.name}"
    try:
        inside = buildinfo.read(path)
    except InputError:
        return "no readable build info inside"
    for key in ("recipe", "version", "target", "format", "lock_digest"):
        if inside.get(key) != getattr(entry, key):
            return (
                f"its build info says {key} {inside.get(key)!r}, manifest.json says "
                f"{getattr(entry, key)!r}"
            )
    if not cache.has_artifact(entry.sha256):
        return "not built with this cache"
    return None
