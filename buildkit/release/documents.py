"""The per-recipe-version documents of a release folder derived from its manifest: the
CycloneDX SBOM, the SLSA provenance statement and the seccomp profiles per target. Written
by ``build`` and again, for the merged manifest, by ``release assemble``.

A release holds the documents its manifest calls for and no others (``called_for``): a
profile for a target with no artifact, a second SBOM or a report of a recipe version the
manifest does not name is not carried into a new SHA256SUMS, is refused by a signing
build, and fails ``verify``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path

from ..fsutil import atomic_write_text
from . import checksums, manifest, profiles, provenance, sbom, sign
from .manifest import ArtifactRecord

#: The hardening reports of a recipe version (``<stem>.hardening.<format>``).
HARDENING_SUFFIXES = tuple(f".hardening.{ext}" for ext in ("json", "sarif", "md", "html"))


def is_document(name: str) -> bool:
    """Release files that describe artifacts rather than being one."""
    return (
        name in (manifest.FILENAME, checksums.FILENAME, sign.FILENAME)
        or name.endswith((sbom.SUFFIX, provenance.SUFFIX))
        or name.endswith(HARDENING_SUFFIXES)
        or name.endswith(profiles.SUFFIXES)
    )


def called_for(entries: Mapping[str, ArtifactRecord]) -> frozenset[str]:
    """The names of every document a release with these manifest entries holds: the
    manifest, and per recipe version its SBOM, provenance and hardening reports, and the
    seccomp profiles of the targets whose artifacts recorded system calls."""
    names = {manifest.FILENAME}
    for recipe, version in by_release(entries):
        stem = f"{recipe}-{version}"
        names |= {sbom.filename(stem), provenance.filename(stem)}
        names |= {stem + suffix for suffix in HARDENING_SUFFIXES}
    return frozenset(names | set(profiles.render(entries)))


def by_release(
    entries: Mapping[str, ArtifactRecord],
) -> dict[tuple[str, str], list[ArtifactRecord]]:
    """Manifest records grouped by (recipe, version)."""
    groups: dict[tuple[str, str], list[ArtifactRecord]] = defaultdict(list)
    for entry in entries.values():
        groups[(entry.recipe, entry.version)].append(entry)
    return dict(sorted(groups.items()))


def write(out: Path, entries: Mapping[str, ArtifactRecord]) -> list[Path]:
    """Write ``<recipe>-<version>.cdx.json`` and ``.intoto.jsonl`` for every release in
    ``entries``; returns their paths."""
    written = []
    for (recipe, version), group in by_release(entries).items():
        stem = f"{recipe}-{version}"
        for path, text in (
            (out / sbom.filename(stem), sbom.render(recipe, version, group)),
            (out / provenance.filename(stem), provenance.render(recipe, version, group)),
        ):
            atomic_write_text(path, text)
            written.append(path)
    for name, text in profiles.render(entries).items():
        atomic_write_text(out / name, text)
        written.append(out / name)
    return written
