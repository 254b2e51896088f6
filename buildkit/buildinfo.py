"""Build info embedded in every artifact, and reading it back without running the artifact.

Zipapps carry it as a JSON member named ``__buildkit__.json`` (at the archive root for
pex, under ``site-packages/`` for shiv).
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import InputError

MEMBER = "__buildkit__.json"


@dataclass(frozen=True, kw_only=True)
class BuildInfo:
    recipe: str
    version: str
    target: str
    format: str
    python: str
    entry: str
    lock_digest: str
    sources_digest: str
    wheels: tuple[str, ...]  # "<filename> sha256:<hex>"
    toolkit: str
    tools: tuple[tuple[str, str], ...]

    def to_json(self) -> str:
        doc = asdict(self)
        doc["tools"] = dict(self.tools)
        doc["wheels"] = list(self.wheels)
        return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def read(path: Path) -> dict[str, Any]:
    """The build info of an artifact, read from its bytes."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if n.rsplit("/", 1)[-1] == MEMBER]
            names.sort(key=lambda n: n.count("/"))
            if not names:
                raise InputError(
                    f"{path}: no buildkit build info inside",
                    hint="was this artifact built by buildkit?",
                )
            doc: dict[str, Any] = json.loads(zf.read(names[0]))
            return doc
    except zipfile.BadZipFile:
        raise InputError(
            f"{path}: not a zipapp buildkit can read", hint="pass a .pex or .pyz artifact"
        ) from None
