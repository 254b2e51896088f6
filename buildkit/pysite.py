"""What a folder of installed wheels holds: distributions, their modules and package data.

A Nuitka binary must hold what the pex of the same lock holds (parity), so its build
asks, for every distribution pip installed from the locked wheels (``pip install
--target``, in the build's own work folder): which top-level packages and modules it
brings, which data files sit inside its packages, and where its ``.dist-info`` is (what
``importlib.metadata`` reads). The answer comes from each distribution's ``RECORD``, the
list pip wrote of exactly the files it installed, cross-checked against the folder: a
name outside the folder, a missing file or a link is refused.

A module name is a path whose parts are identifiers (``a/b/c.py`` is ``a.b.c``,
``a/b/__init__.py`` is ``a.b``, ``a/_x.cpython-311-x86_64-linux-gnu.so`` is ``a._x``);
other ``.py`` files (``tests-data/x.py``, ``a/b-c.py``) cannot be imported by name and
are data like any other file in a package folder.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path, PurePosixPath

from .errors import IntegrityError
from .fsutil import escaped, read_regular

#: One RECORD or METADATA file larger than this is not read (awscli's RECORD: 0.4 MB).
MAX_RECORD = 16 << 20
#: Files of a module (code, compiled code and extension modules), never data.
CODE_SUFFIXES = (".py", ".pyc", ".so", ".pyd", ".dylib")


@dataclass(frozen=True, kw_only=True)
class Distribution:
    """One installed distribution, as ``importlib.metadata`` and the import system see it."""

    name: str  # as its METADATA spells it ("": the recipe's own sources)
    version: str
    metadata: str  # its .dist-info folder, relative to the site ("": none)
    packages: tuple[str, ...]  # top-level import packages (folders of modules)
    modules: tuple[str, ...]  # every importable module, dotted, packages included
    data: tuple[str, ...]  # files inside its packages that are not code, site-relative


@dataclass(frozen=True, kw_only=True)
class Site:
    root: Path
    distributions: tuple[Distribution, ...]

    def modules(self) -> frozenset[str]:
        return frozenset(m for d in self.distributions for m in d.modules)

    def packages(self) -> tuple[str, ...]:
        return tuple(sorted({p for d in self.distributions for p in d.packages}))

    def top_modules(self) -> tuple[str, ...]:
        """Top-level single-file modules (``six``, ``typing_extensions``, ``_cffi_backend``)."""
        tops = {m for d in self.distributions for m in d.modules if "." not in m}
        return tuple(sorted(tops - set(self.packages())))

    def data(self) -> tuple[str, ...]:
        return tuple(sorted({f for d in self.distributions for f in d.data}))


def module_name(rel: str) -> str | None:
    """The dotted name a site-relative path is imported by, or None (not a module)."""
    path = PurePosixPath(rel)
    if path.suffix not in (".py", ".so", ".pyd"):
        return None
    stem = path.name.split(".")[0]
    parts = [*path.parts[:-1]] + ([] if stem == "__init__" and path.suffix == ".py" else [stem])
    if not parts or not all(p.isidentifier() for p in parts):
        return None
    return ".".join(parts)


def _safe(rel: str) -> bool:
    path = PurePosixPath(rel)
    return bool(rel) and not path.is_absolute() and ".." not in path.parts


def _record(root: Path, dist_info: Path) -> Iterator[str]:
    text = read_regular(dist_info / "RECORD", MAX_RECORD).decode("utf-8", errors="replace")
    for row in csv.reader(io.StringIO(text)):
        if row and row[0]:
            yield row[0]


def read_distribution(root: Path, dist_info: Path) -> Distribution:
    """One ``.dist-info`` folder of ``root`` and the files its RECORD lists."""
    meta = read_regular(dist_info / "METADATA", MAX_RECORD).decode("utf-8", errors="replace")
    headers = HeaderParser().parsestr(meta)
    name, version = headers.get("Name"), headers.get("Version")
    if not name or not version:
        raise IntegrityError(
            f"{escaped(str(dist_info))}/METADATA has no Name or Version",
            hint="the wheel is damaged: remove it from the cache and build again",
        )
    packages, modules, data = _classify(root, _record(root, dist_info), owner=name)
    return Distribution(
        name=name,
        version=version,
        metadata=dist_info.name,
        packages=packages,
        modules=modules,
        data=data,
    )


def _classify(
    root: Path, files: Iterable[str], *, owner: str
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(top-level packages, modules, data files) among ``files``, paths under ``root``."""
    packages: set[str] = set()
    modules: set[str] = set()
    data: set[str] = set()
    for rel in files:
        if not _safe(rel):
            continue  # scripts pip put beside the site (../../bin/x): not importable
        path = PurePosixPath(rel)
        top = path.parts[0]
        if top.endswith((".dist-info", ".data")) or top in ("bin", "__pycache__"):
            continue
        if "__pycache__" in path.parts:
            continue
        on_disk = root / rel
        if on_disk.is_symlink() or not on_disk.is_file():
            raise IntegrityError(
                f"{escaped(owner)}: {escaped(rel)} is listed in its RECORD but is not a "
                f"regular file under {escaped(str(root))}",
                hint="the installed site is damaged: build again",
            )
        dotted = module_name(rel)
        if dotted is not None:
            modules.add(dotted)
            parts = dotted.split(".")
            if len(path.parts) > 1:
                packages.add(path.parts[0])
                # every folder on the way is a package (regular or namespace)
                modules.update(".".join(parts[:i]) for i in range(1, len(path.parts)))
        elif len(path.parts) > 1 and (
            path.suffix == ".py" or not path.name.endswith(CODE_SUFFIXES)
        ):
            data.add(rel)  # a .py file not importable by its name is read, if at all, as data
    return tuple(sorted(packages)), tuple(sorted(modules)), tuple(sorted(data))


def read_sources(root: Path) -> Site:
    """The recipe's own sources (as buildkit staged them in ``root``), seen as one
    distribution without metadata: the pex holds them as it holds the wheels."""
    files = [
        p.relative_to(root).as_posix()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    ]
    packages, modules, data = _classify(root, files, owner="the recipe's sources")
    own = Distribution(
        name="", version="", metadata="", packages=packages, modules=modules, data=data
    )
    return Site(root=root, distributions=(own,))


def read_site(root: Path) -> Site:
    """Every distribution installed in ``root`` (a ``pip install --target`` folder)."""
    found = [
        read_distribution(root, d)
        for d in sorted(root.glob("*.dist-info"))
        if d.is_dir() and not d.is_symlink()
    ]
    return Site(root=root, distributions=tuple(found))
