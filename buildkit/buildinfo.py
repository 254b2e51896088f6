"""Build info embedded in every artifact, and reading it back without running the artifact.

Zipapps carry it as a JSON member named ``__buildkit__.json`` (at the archive root for
pex, under ``site-packages/`` for shiv); nuitka standalone archives under their top
folder; nuitka onefile binaries carry the same file, uncompressed, in their payload, and
it is found by its first line.
"""

from __future__ import annotations

import json
import tarfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import InputError

MEMBER = "__buildkit__.json"
SCHEMA_KEY = "_schema"
SCHEMA = "buildkit-info/1"
_MARKER = f'{{\n  "{SCHEMA_KEY}": "{SCHEMA}"'.encode()


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
    settings: tuple[tuple[str, str], ...] = ()  # backend settings (mode, compiler flags)
    native: tuple[str, ...] = ()  # wheels of the recipe's own native packages (by name)

    def to_json(self) -> str:
        doc = asdict(self)
        doc["tools"] = dict(self.tools)
        doc["wheels"] = list(self.wheels)
        doc["settings"] = dict(self.settings)
        if self.native:
            doc["native"] = list(self.native)
        else:
            del doc["native"]
        # The schema key first: inspect finds it in binaries that are not archives.
        return json.dumps({SCHEMA_KEY: SCHEMA, **dict(sorted(doc.items()))}, indent=2) + "\n"


def read(path: Path) -> dict[str, Any]:
    """The build info of an artifact, read from its bytes (never run)."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            names = sorted(
                (n for n in zf.namelist() if n.rsplit("/", 1)[-1] == MEMBER),
                key=lambda n: n.count("/"),
            )
            if names:
                return _decode(zf.read(names[0]), path)
    elif tarfile.is_tarfile(path):
        with tarfile.open(path) as tar:
            for member in tar:
                if (
                    member.isfile()
                    and member.name.count("/") == 1
                    and member.name.endswith("/" + MEMBER)
                ):
                    f = tar.extractfile(member)
                    if f is not None:
                        return _decode(f.read(), path)
    else:
        data = path.read_bytes()  # a onefile binary carries the file uncompressed
        at = data.find(_MARKER)
        if at >= 0:
            doc, _ = json.JSONDecoder().raw_decode(data[at:].decode("utf-8", "replace"))
            return _check(doc, path)
    raise InputError(
        f"{path}: no buildkit build info inside",
        hint="pass a .pex, .pyz, .tar.gz or native binary built by buildkit",
    )


def _decode(raw: bytes, path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except ValueError:
        raise InputError(f"{path}: its build info is not valid JSON") from None
    return _check(doc, path)


def _check(doc: Any, path: Path) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise InputError(f"{path}: its build info is not a JSON object")
    return doc
