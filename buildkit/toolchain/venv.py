"""The venv Nuitka runs from: the toolchain's interpreter with the pinned toolkit.

Nuitka compiles for the interpreter that runs it, so it must run on the toolchain's
CPython, not on the Python that runs buildkit. The venv is made once per toolchain and
toolkit lock (``buildkit/data/toolkit-runtime.txt``, hash-checked; build backends first,
so Nuitka's sdist builds without isolation) with uv, and kept in the toolchain's folder
(``nuitka/<digest>/``). buildkit itself comes from this installation through a ``.pth``
file (Nuitka loads buildkit's plugins).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from importlib.resources import files
from pathlib import Path

import buildkit

from .. import tools
from ..cache import Cache
from ..errors import ToolError
from ..fsutil import folder_lock, output_errors
from .store import Toolchain

log = logging.getLogger(__name__)

TOOLKIT_LOCK = "data/toolkit-runtime.txt"
_BACKENDS = ("setuptools", "wheel", "flit-core")
#: Bumped when the way a kept venv is made changes (2: relocatable scripts).
_LAYOUT = "2"


def requirement_blocks(text: str) -> list[str]:
    """The requirement entries of a hash-pinned requirements file (continuations joined)."""
    out: list[str] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace() and out:
            out[-1] += "\n" + line
        else:
            out.append(line)
    return [b.split("    #")[0].rstrip(" \\\n") for b in out]


def _link_source(venv: Path) -> None:
    source = str(Path(buildkit.__file__).resolve().parent.parent)
    for site in venv.glob("lib/python3*/site-packages"):
        pth = site / "buildkit-source.pth"
        if not pth.exists() or pth.read_text(encoding="utf-8").strip() != source:
            pth.write_text(source + "\n", encoding="utf-8")


def toolkit_venv(python: Path, dest: Path, *, what: str) -> None:
    """Make ``dest`` a venv of ``python`` with the pinned toolkit (hash-checked, build
    backends first) and buildkit's source on its path."""
    text = files("buildkit").joinpath(TOOLKIT_LOCK).read_text(encoding="utf-8")
    locks = dest.with_name(dest.name + ".locks")
    locks.mkdir(exist_ok=True)
    try:
        blocks = requirement_blocks(text)
        backends = "".join(
            b + "\n" for b in blocks if b.split("==", 1)[0].strip().lower() in _BACKENDS
        )
        (locks / "backends.txt").write_text(backends, encoding="utf-8")
        (locks / "toolkit.txt").write_text(text, encoding="utf-8")
        uv = tools.find_tool("uv")
        # relocatable: its scripts (pex, shiv…) find their interpreter relative to
        # themselves, so the venv still works after it is renamed into place
        tools.run(
            [uv, "venv", "--no-config", "--quiet", "--relocatable", "--python", python, dest],
            what=what,
        )
        for step, lock in (("build backends", "backends.txt"), ("toolkit", "toolkit.txt")):
            tools.run(
                [uv, "pip", "install", "--no-config", "--quiet", "--python",
                 dest / "bin" / "python", "--require-hashes", "--no-deps",
                 "--no-build-isolation", "-r", locks / lock],
                what=f"installing the pinned {step} into {what}",
                timeout=1800,
            )  # fmt: skip
        _link_source(dest)
    finally:
        shutil.rmtree(locks, ignore_errors=True)


#: Rewritten with buildkit's own source path on every use: left out of a venv's seal.
_SOURCE_PTH = "buildkit-source.pth"


def kept_toolkit_venv(python: Path, parent: Path, key: str, *, what: str, cache: Cache) -> Path:
    """The interpreter of ``parent/<digest>``, a toolkit venv of ``python`` made now unless
    it is there. The digest covers the toolkit lock and ``key`` (what else decides the
    venv); it is filled beside its place and renamed in, so a half-made venv is never used.
    A kept venv is used only when it is, byte for byte, what a build holding this cache's
    key made and sealed (``<digest>.sealed``); any other is made again."""
    text = files("buildkit").joinpath(TOOLKIT_LOCK).read_text(encoding="utf-8")
    digest = hashlib.sha256(f"{_LAYOUT}\n{key}\n{text}".encode()).hexdigest()[:20]
    final = parent / digest
    with folder_lock(parent):  # one build checks or makes it at a time; the others wait
        return _kept(python, final, f"toolkit venv {digest}", what, cache)


def _kept(python: Path, final: Path, kind: str, what: str, cache: Cache) -> Path:
    parent, digest, skip = final.parent, final.name, frozenset({_SOURCE_PTH})
    if (final / "bin" / "python").exists():
        _link_source(final)
        if (problem := cache.tree_problem(final, kind, skip=skip)) is None:
            return final / "bin" / "python"
        log.warning("%s at %s: %s; making it again", what, final, problem)
    staging = parent / f".{digest}.{os.getpid()}.part"
    shutil.rmtree(staging, ignore_errors=True)
    with output_errors(parent):
        parent.mkdir(parents=True, exist_ok=True)
        if final.is_symlink() or final.exists():  # lost its interpreter, or not sealed
            if final.is_symlink() or not final.is_dir():
                final.unlink()
            else:
                os.rename(final, staging)
                shutil.rmtree(staging)
    try:
        log.info("installing the pinned toolkit into %s (once)", what, extra={"step": "venv"})
        # by its real path: the venv outlives any link it was reached through
        toolkit_venv(python.resolve(), staging, what=what)
        try:
            os.rename(staging, final)
        except OSError:
            if not (final / "bin" / "python").exists():  # not a concurrent twin: a failure
                raise ToolError(f"cannot keep {what} at {final}") from None
        else:
            cache.seal_tree(final, kind, skip=skip)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final / "bin" / "python"


def nuitka_python(toolchain: Toolchain, cache: Cache) -> Path:
    """The toolchain's Nuitka venv's interpreter, the venv made now unless it is there."""
    return kept_toolkit_venv(
        toolchain.python,
        toolchain.folder / "nuitka",
        "",
        what=f"the {toolchain.spec.target} toolchain's Nuitka venv",
        cache=cache,
    )
