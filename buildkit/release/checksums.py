"""SHA256SUMS in GNU coreutils format: ``<hex>  <name>``, sorted by name, LF endings."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from ..errors import CheckFailed
from ..fsutil import atomic_write_text, escaped

FILENAME = "SHA256SUMS"
_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")


def is_plain_name(name: str) -> bool:
    """A name that stays inside its folder: no separators, not ``.`` or ``..``."""
    return bool(name) and name not in (".", "..") and not any(c in name for c in "/\\\n\0")


def render(digests: Mapping[str, str]) -> str:
    for name in digests:
        if not is_plain_name(name):
            raise ValueError(f"release file name {name!r} cannot go into {FILENAME}")
    return "".join(f"{digests[name]}  {name}\n" for name in sorted(digests))


def parse(text: str, path: Path) -> dict[str, str]:
    """Name → digest. A name listed twice is refused: ``sha256sum -c`` checks every line,
    so a good line cannot excuse a bad one."""
    out: dict[str, str] = {}
    first: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), 1):
        m = _LINE.fullmatch(line)
        if not m:
            raise CheckFailed(f"{path}:{number}: not a '<sha256>  <name>' line: {line!r}")
        name = m.group(2)
        if not is_plain_name(name):
            raise CheckFailed(f"{path}:{number}: {name!r} is not a file of this folder")
        if name in out:
            raise CheckFailed(
                f"{path}:{number}: {escaped(name)} is listed twice (lines {first[name]} and "
                f"{number})"
            )
        out[name], first[name] = m.group(1), number
    return out


def write(folder: Path, digests: Mapping[str, str]) -> Path:
    path = folder / FILENAME
    atomic_write_text(path, render(digests))
    return path
