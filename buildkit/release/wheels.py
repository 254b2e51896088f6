"""What the manifest says went into an artifact: wheel files and the interpreter."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename


@dataclass(frozen=True, kw_only=True)
class WheelFile:
    name: str  # canonical project name
    version: str
    filename: str
    sha256: str  # hex
    own: bool = False  # one of the recipe's native packages, not from PyPI

    @property
    def purl(self) -> str:
        return f"pkg:{'generic' if self.own else 'pypi'}/{self.name}@{self.version}"


def wheel_files(entry: Mapping[str, Any]) -> list[WheelFile]:
    """The wheels of a manifest entry (``inputs.wheels``: ``"<file> sha256:<hex>"``)."""
    out = []
    own = {canonicalize_name(str(n)) for n in entry.get("inputs", {}).get("native", [])}
    for item in entry.get("inputs", {}).get("wheels", []):
        filename, _, digest = str(item).partition(" ")
        try:
            name, version, _, _ = parse_wheel_filename(filename)
        except InvalidWheelFilename:
            name, version = canonicalize_name(filename.split("-")[0]), None
        out.append(
            WheelFile(
                name=str(name),
                version=str(version or ""),
                filename=filename,
                sha256=digest.removeprefix("sha256:"),
                own=canonicalize_name(str(name)) in own,
            )
        )
    return out


def interpreter_version(entry: Mapping[str, Any]) -> str:
    """The CPython version compiled into a Nuitka binary ('' for zipapps)."""
    settings = entry.get("inputs", {}).get("settings", {})
    named = str(settings.get("interpreter", "")).removeprefix("CPython ").strip()
    return named.split(" ", 1)[0]  # "3.11.2 (buildkit toolchain, ...)" -> "3.11.2"
