"""Move built artifacts into a release folder, then write manifest.json and SHA256SUMS.

Every file is written under a temporary name in the same folder and renamed when
complete, so a failed or interrupted build never leaves a partial file under a final
name. Entries of earlier builds stay listed while their files are still there and still
match; the others are dropped from the listing with a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..fsutil import atomic_copy, output_errors, sha256_file
from . import checksums, manifest
from .manifest import ArtifactRecord

log = logging.getLogger(__name__)


def publish(out: Path, built: Sequence[tuple[Path, ArtifactRecord]]) -> tuple[Path, Path]:
    """Copy each ``(source, record)`` into ``out``; returns (SHA256SUMS, manifest.json)."""
    with output_errors(out):
        out.mkdir(parents=True, exist_ok=True)
    entries: dict[str, dict[str, Any]] = {}
    rebuilt = {record.name for _, record in built}
    for name, entry in manifest.read(out).items():
        if name in rebuilt:
            continue
        path = out / name
        if path.is_file() and sha256_file(path) == entry.get("sha256"):
            entries[name] = entry
        elif path.exists():
            log.warning("%s changed since it was built; it is no longer listed", path)
    for source, record in built:
        dest = out / record.name
        if not (dest.is_file() and sha256_file(dest) == record.sha256):
            atomic_copy(source, dest, mode=0o755)
        entries[record.name] = record.to_dict()
    manifest_path = manifest.write(out, entries)
    digests = {name: str(e["sha256"]) for name, e in entries.items()}
    digests[manifest.FILENAME] = sha256_file(manifest_path)
    return checksums.write(out, digests), manifest_path
