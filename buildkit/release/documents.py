"""The per-recipe-version documents of a release folder derived from its manifest: the
CycloneDX SBOM, the SLSA provenance statement and the seccomp profiles per target. Written
by ``build`` and again, for the merged manifest, by ``release assemble``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path

from ..fsutil import atomic_write_text
from . import profiles, provenance, sbom
from .manifest import ArtifactRecord


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
