"""The hermetic toolchain: the interpreter native binaries are built with, made here.

Nuitka links the interpreter (libpython, the stdlib's extension modules and the
libraries they use) into every native binary. Taken from the build host, that
interpreter would tie the binary to the host's glibc, differ between a laptop and a CI
runner, and carry whatever hardening its distributor chose. So buildkit builds it:
CPython and the libraries its stdlib needs, from source archives pinned by sha256
(``buildkit/data/toolchain.toml``), compiled with zig (pinned in the toolkit lock) for
the target's C library baseline (``zig_target`` in targets.toml, e.g. glibc 2.17), with
the default hardening policy's flags. The result lives in the cache under a key made of
everything that decides its bytes (see :meth:`ToolchainSpec.digest`).

This module is the lock's data model and reader; :mod:`.build` compiles, :mod:`.store`
keeps the results in the cache.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

from ..errors import InputError, did_you_mean
from ..hosts import Source
from ..targets import Target

LOCK = "data/toolchain.toml"
_SHA256 = re.compile(r"[0-9a-f]{64}")
#: The libraries :mod:`.build` knows how to compile, in the order they are built.
LIBRARIES = ("zlib", "bzip2", "xz", "libffi", "openssl", "ncurses")
#: The programs it knows how to compile for the build machine (what Nuitka runs on the
#: target's files besides the compiler: readelf and strip, patchelf).
PROGRAMS = ("binutils", "patchelf")


@dataclass(frozen=True, kw_only=True)
class Pinned:
    """One source archive of the toolchain."""

    source: Source
    version: str
    purl: str


@dataclass(frozen=True, kw_only=True)
class ToolchainSpec:
    """What the toolchain of one target is built from."""

    target: str
    zig_target: str  # zig cc -target value (C library and its baseline)
    python: str  # CPython X.Y
    cpython: Pinned
    libraries: tuple[Pinned, ...]  # in build order
    #: built for the build machine, run on the target's files (in a foreign builder);
    #: never part of an artifact
    programs: tuple[Pinned, ...] = ()

    @property
    def pinned(self) -> tuple[Pinned, ...]:
        """The sources of what goes into a binary: the interpreter and its libraries."""
        return (self.cpython, *self.libraries)

    @property
    def sources(self) -> tuple[Pinned, ...]:
        """Every source archive the toolchain is built from."""
        return (*self.pinned, *self.programs)

    def digest(self, zig_version: str) -> str:
        """What decides the toolchain's bytes: the sources, the compiler and its target,
        and the way it is built (the build module itself and the hardening flags)."""
        from .. import hardening

        builder = files("buildkit").joinpath("toolchain/build.py").read_bytes()
        doc = {
            "zig": zig_version,
            "zig_target": self.zig_target,
            "python": self.python,
            "sources": [[p.source.name, p.source.sha256] for p in self.sources],
            "builder": hashlib.sha256(builder).hexdigest(),
            "hardening": files("buildkit").joinpath("data/hardening.toml").read_text("utf-8"),
            "require": list(hardening.DEFAULT_REQUIRE),
        }
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _pinned(name: str, row: Any, where: str) -> Pinned:
    if not isinstance(row, dict):
        raise InputError(f"{where}: [sources.{name}] is not a table")
    for key in ("url", "sha256", "version", "what", "purl"):
        if not isinstance(row.get(key), str) or not row[key]:
            raise InputError(
                f"{where}: [sources.{name}].{key} is missing or not a string",
                hint="each source has url, sha256, version, what and purl",
            )
    if not _SHA256.fullmatch(row["sha256"]):
        raise InputError(
            f"{where}: [sources.{name}].sha256 is not 64 lower-case hex digits",
            hint="copy the sha256 from the Debian suite's Sources index",
        )
    if not row["url"].startswith(("http://", "https://")):
        raise InputError(f"{where}: [sources.{name}].url is not an http(s) URL")
    source = Source(name=name, url=row["url"], sha256=row["sha256"], what=row["what"])
    return Pinned(source=source, version=row["version"], purl=row["purl"])


def parse(doc: dict[str, Any], target: Target, where: str = LOCK) -> ToolchainSpec:
    """The toolchain spec of ``target`` from a parsed lock document."""
    rows = doc.get("targets", {})
    if target.name not in rows or not target.zig_target:
        have = ", ".join(sorted(rows)) or "none"
        raise InputError(
            f"{where}: no toolchain for target {target.name} (toolchains: {have})",
            hint="native binaries for it are built on its own builder, outside the toolchain",
        )
    row = rows[target.name]
    sources = doc.get("sources", {})
    python = row.get("python")
    if not isinstance(python, str) or f"cpython-{python}" not in sources:
        raise InputError(
            f"{where}: [targets.{target.name}].python must name an X.Y with a "
            f'[sources."cpython-X.Y"] table',
        )
    libraries = row.get("libraries", [])
    if not isinstance(libraries, list):
        raise InputError(f"{where}: [targets.{target.name}].libraries is not a list")
    for name in libraries:
        if name not in LIBRARIES:
            raise InputError(
                f"{where}: [targets.{target.name}].libraries: unknown library "
                f"{name!r}{did_you_mean(str(name), LIBRARIES)}",
                hint="known: " + ", ".join(LIBRARIES),
            )
        if name not in sources:
            raise InputError(f"{where}: library {name} has no [sources.{name}] table")
    ordered = [name for name in LIBRARIES if name in libraries]
    programs = row.get("programs", [])
    if not isinstance(programs, list):
        raise InputError(f"{where}: [targets.{target.name}].programs is not a list")
    for name in programs:
        if name not in PROGRAMS:
            raise InputError(
                f"{where}: [targets.{target.name}].programs: unknown program "
                f"{name!r}{did_you_mean(str(name), PROGRAMS)}",
                hint="known: " + ", ".join(PROGRAMS),
            )
        if name not in sources:
            raise InputError(f"{where}: program {name} has no [sources.{name}] table")
    return ToolchainSpec(
        target=target.name,
        zig_target=target.zig_target,
        python=python,
        cpython=_pinned(f"cpython-{python}", sources[f"cpython-{python}"], where),
        libraries=tuple(_pinned(name, sources[name], where) for name in ordered),
        programs=tuple(_pinned(name, sources[name], where) for name in PROGRAMS
                       if name in programs),
    )  # fmt: skip


@cache
def _lock() -> dict[str, Any]:
    return tomllib.loads(files("buildkit").joinpath(LOCK).read_text(encoding="utf-8"))


def has_toolchain(target: Target) -> bool:
    return bool(target.zig_target) and target.name in _lock().get("targets", {})


def spec_for(target: Target) -> ToolchainSpec:
    return parse(_lock(), target)


def targets_with_toolchain() -> list[str]:
    return sorted(_lock().get("targets", {}))
