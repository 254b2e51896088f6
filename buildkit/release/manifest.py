"""manifest.json: what was built from what, with digests. One entry per artifact."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import CheckFailed
from ..fsutil import atomic_write_text

FILENAME = "manifest.json"
SCHEMA = "buildkit-manifest/1"


@dataclass(frozen=True, kw_only=True)
class ArtifactRecord:
    name: str
    recipe: str
    version: str
    target: str
    format: str
    python: str
    sha256: str
    size: int
    lock: str  # lockfile path relative to the project, as given
    lock_digest: str
    inputs: dict[str, Any]  # sources digest, wheels, tools, backend settings
    payload: dict[str, str] = field(default_factory=dict)  # files inside a native artifact
    unvouched: str | None = None  # kept by --keep-foreign: why (only then in the entry)

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        if self.unvouched is None:
            del doc["unvouched"]
        return doc

    @classmethod
    def from_dict(cls, entry: dict[str, Any], where: str) -> ArtifactRecord:
        """The record of a manifest entry (one ``to_dict`` wrote); an entry with keys or
        values of other kinds is refused, naming ``where`` it came from."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(entry) - known)
        try:
            if unknown:
                raise TypeError(f"unknown key(s) {', '.join(unknown)}")
            record = cls(**entry)
            if not all(isinstance(getattr(record, k), str) for k in _TEXT) or not isinstance(
                record.size, int
            ):
                raise TypeError("a field of the wrong type")
        except TypeError as exc:
            raise CheckFailed(
                f"{where}: manifest entry {str(entry.get('name'))!r} is not one buildkit "
                f"writes: {exc}",
                hint="use a release folder written by this version of buildkit",
            ) from None
        return record


_TEXT = ("name", "recipe", "version", "target", "format", "python", "sha256", "lock")


def read(folder: Path) -> dict[str, dict[str, Any]]:
    """Existing entries by artifact name ({} when there is no manifest yet)."""
    path = folder / FILENAME
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    artifacts = doc.get("artifacts") if isinstance(doc, dict) else None
    if not isinstance(artifacts, list):
        return {}  # not a manifest: nothing of it is kept
    return {
        a["name"]: a
        for a in artifacts
        if isinstance(a, dict)
        and isinstance(a.get("name"), str)
        and isinstance(a.get("sha256"), str)
    }


def write(folder: Path, entries: dict[str, dict[str, Any]]) -> Path:
    doc = {"schema": SCHEMA, "artifacts": [entries[k] for k in sorted(entries)]}
    path = folder / FILENAME
    atomic_write_text(path, json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return path
