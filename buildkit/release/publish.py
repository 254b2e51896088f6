"""Move built artifacts into a release folder, then write manifest.json and SHA256SUMS.

Every file is written under a temporary name in the same folder and renamed when
complete, so a failed or interrupted build never leaves a partial file under a final
name. Entries of earlier builds stay listed while their files are still there and still
match; the others are dropped from the listing with a warning. Other release files
(hardening reports, SBOM, provenance) are written by ``extra`` once the artifacts are in
place, and listed too; earlier ones stay listed while they still match.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import CheckFailed
from ..fsutil import atomic_copy, output_errors, sha256_file
from . import checksums, manifest
from .manifest import ArtifactRecord

log = logging.getLogger(__name__)


def publish(
    out: Path,
    built: Sequence[tuple[Path, ArtifactRecord]],
    *,
    extra: Callable[[dict[str, dict[str, Any]]], list[Path]] | None = None,
) -> tuple[Path, Path]:
    """Copy each ``(source, record)`` into ``out``; returns (SHA256SUMS, manifest.json).

    ``extra`` gets the release's manifest entries and writes more release files into
    ``out`` (returning their paths), which SHA256SUMS lists as well."""
    with output_errors(out):
        out.mkdir(parents=True, exist_ok=True)
    try:
        listed = checksums.parse((out / checksums.FILENAME).read_text("utf-8"), out)
    except (OSError, CheckFailed):
        listed = {}
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
    written = extra(entries) if extra is not None else []
    digests = {
        name: digest
        for name, digest in listed.items()
        if name not in entries
        and name != manifest.FILENAME
        and (out / name).is_file()
        and sha256_file(out / name) == digest
    }
    digests.update({name: str(e["sha256"]) for name, e in entries.items()})
    digests[manifest.FILENAME] = sha256_file(manifest_path)
    digests.update({path.name: sha256_file(path) for path in written})
    return checksums.write(out, digests), manifest_path
