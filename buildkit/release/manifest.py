"""manifest.json: what was built from what, with digests. One entry per artifact."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read(folder: Path) -> dict[str, dict[str, Any]]:
    """Existing entries by artifact name ({} when there is no manifest yet)."""
    path = folder / FILENAME
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError:
        return {}
    return {a["name"]: a for a in doc.get("artifacts", []) if isinstance(a, dict) and "name" in a}


def write(folder: Path, entries: dict[str, dict[str, Any]]) -> Path:
    doc = {"schema": SCHEMA, "artifacts": [entries[k] for k in sorted(entries)]}
    path = folder / FILENAME
    atomic_write_text(path, json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return path
