"""manifest.json: what was built from what, with digests. One entry per artifact."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CheckFailed
from ..fsutil import atomic_write_text, loads_bounded, read_regular

log = logging.getLogger(__name__)

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
    checks: dict[str, Any] | None = None  # the recipe's checks: where they ran, outcomes
    # every native file inside: path, sha256, component, origin, source (release/natives.py)
    natives: list[dict[str, str]] | None = None
    # a native binary's parity proof: modules and package-data files of the lock it was
    # shown to import and read as the pex does (backends/parity.py)
    parity: dict[str, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        for optional in ("unvouched", "checks", "natives", "parity"):
            if doc[optional] is None:
                del doc[optional]
        return doc

    @property
    def stem(self) -> str:
        """``<recipe>-<version>``: the name the release's documents start with."""
        return f"{self.recipe}-{self.version}"

    @classmethod
    def from_dict(cls, entry: object, where: str) -> ArtifactRecord:
        """The record of a manifest entry (one ``to_dict`` wrote); an entry with keys or
        values of other kinds is refused (CheckFailed), naming ``where`` it came from."""
        problem = _problem(entry)
        if problem is None:
            assert isinstance(entry, dict)
            return cls(**entry)
        name = entry.get("name") if isinstance(entry, dict) else None
        raise CheckFailed(
            f"{where}: manifest entry {str(name)!r} is not one buildkit writes: {problem}",
            hint="use a release folder written by buildkit",
        )


_TYPES: dict[str, type | tuple[type, ...]] = {
    **dict.fromkeys(("name", "recipe", "version", "target", "format", "python"), str),
    **dict.fromkeys(("sha256", "lock", "lock_digest"), str),
    "size": int,
    "inputs": dict,
    "payload": dict,
    "unvouched": (str, type(None)),
    "checks": (dict, type(None)),
    "natives": (list, type(None)),
    "parity": (dict, type(None)),
}
_OPTIONAL = ("payload", "unvouched", "checks", "natives", "parity")
_NATIVE_KEYS = frozenset({"path", "sha256", "component", "origin", "source"})


def _problem(entry: object) -> str | None:
    """Why ``entry`` is not a record's dict (None: it is one)."""
    if not isinstance(entry, dict):
        return f"not an object but {type(entry).__name__}"
    unknown = sorted(set(entry) - set(_TYPES))
    lacking = [k for k in _TYPES if k not in entry and k not in _OPTIONAL]
    wrong = [
        k
        for k, kind in _TYPES.items()
        if k in entry and (not isinstance(entry[k], kind) or isinstance(entry[k], bool))
    ]
    natives = entry.get("natives")
    if isinstance(natives, list) and not all(
        isinstance(n, dict)
        and set(n) == _NATIVE_KEYS
        and all(isinstance(v, str) for v in n.values())
        for n in natives
    ):
        wrong.append("natives")
    proved = entry.get("parity")
    if isinstance(proved, dict) and not (
        set(proved) == {"modules", "data", "skipped"}
        and all(type(v) is int and v >= 0 for v in proved.values())
    ):
        wrong.append("parity")
    return (
        "; ".join(
            [f"unknown key(s) {', '.join(unknown)}"] * bool(unknown)
            + [f"lacks {', '.join(lacking)}"] * bool(lacking)
            + [f"{', '.join(wrong)} of the wrong type"] * bool(wrong)
        )
        or None
    )


def parse(doc: object, where: str) -> tuple[dict[str, ArtifactRecord], list[tuple[str, str]]]:
    """The records of a manifest document by name, and (entry, why) for each entry that is
    not one. Raises ValueError when ``doc`` is not a manifest at all."""
    artifacts = doc.get("artifacts") if isinstance(doc, dict) else None
    if not isinstance(artifacts, list):
        raise ValueError("no 'artifacts' list")
    records: dict[str, ArtifactRecord] = {}
    bad: list[tuple[str, str]] = []
    for number, entry in enumerate(artifacts, 1):
        problem = _problem(entry)
        if problem is None:
            assert isinstance(entry, dict)
            records[entry["name"]] = ArtifactRecord(**entry)
        else:
            named = entry.get("name") if isinstance(entry, dict) else None
            label = named if isinstance(named, str) else f"entry {number}"
            bad.append((label, f"{where} entry {number} is not one buildkit writes: {problem}"))
    return records, bad


#: Bytes of a manifest buildkit reads (one of ours: a few KB per artifact).
MAX_SIZE = 64 << 20


def read(folder: Path) -> dict[str, ArtifactRecord]:
    """Existing records by artifact name ({} when there is no manifest yet, or it is not
    one); entries that are not records are left out, with a warning."""
    path = folder / FILENAME
    try:
        doc = loads_bounded(read_regular(path, MAX_SIZE))
        records, bad = parse(doc, str(path))
    except (OSError, ValueError, RecursionError):
        return {}
    for _label, why in bad:
        log.warning("%s; it is no longer listed", why)
    return records


def write(folder: Path, records: Mapping[str, ArtifactRecord]) -> Path:
    doc = {"schema": SCHEMA, "artifacts": [records[k].to_dict() for k in sorted(records)]}
    path = folder / FILENAME
    atomic_write_text(path, json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return path
