"""Which Python interpreters this machine has, and which an artifact can run under.

The checks run a zipapp the way ops staff do (``./app.pex``), with exactly one Python on
``PATH``: the one chosen. Interpreters are looked for where distributions and pyenv put
real binaries, never through pyenv's shims (a shim runs whatever version is selected).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

_VERSION = re.compile(r"^3\.(\d+)")


def _candidates(version: str) -> Iterable[Path]:
    name = f"python{version}"
    yield Path("/usr/bin") / name
    yield Path("/usr/local/bin") / name
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    if pyenv.is_dir():
        found = [p for p in pyenv.glob(f"{version}.*") if re.fullmatch(r"\d+\.\d+\.\d+", p.name)]
        for folder in sorted(
            found, key=lambda p: [int(x) for x in p.name.split(".")], reverse=True
        ):
            yield folder / "bin" / name
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        if entry and "shims" not in Path(entry).parts:
            yield Path(entry) / name


def find(version: str) -> Path | None:
    """A real ``python{version}`` binary on this machine, the system's first."""
    for path in _candidates(version):
        if path.is_file() and os.access(path, os.X_OK):
            return path
    return None


def available(versions: Iterable[str]) -> dict[str, Path]:
    """Each of ``versions`` (X.Y) this machine has, with its interpreter."""
    return {v: p for v in versions if (p := find(v)) is not None}


def newer(python: str, upto: int = 16) -> list[str]:
    """The X.Y versions after ``python`` that an open-ended artifact might meet."""
    minor = int(python.split(".")[1])
    return [f"3.{m}" for m in range(minor + 1, upto + 1)]


def open_ended(wheel_filenames: Iterable[str], python: str) -> bool:
    """True when every wheel runs on ``python`` and every later CPython: pure Python
    (``py3``, ABI ``none``) or the stable ABI (``abi3``) from a version at or below
    ``python``. A wheel built for one CPython's ABI ties the artifact to that version."""
    minor = int(python.split(".")[1])
    for filename in wheel_filenames:
        try:
            _, _, _, tags = parse_wheel_filename(filename)
        except InvalidWheelFilename:
            return False
        ok = False
        for tag in tags:
            if tag.abi == "none" and tag.interpreter.startswith("py3"):
                ok = True
            elif tag.abi == "abi3" and (m := re.fullmatch(r"cp3(\d+)", tag.interpreter)):
                ok = ok or int(m.group(1)) <= minor
        if not ok:
            return False
    return True
