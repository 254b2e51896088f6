"""Emulated hosts: roots of foreign targets (aarch64 on an x86-64 machine) run under QEMU.

A host is data (``buildkit/data/hosts.toml``): the target it stands for, how its root is
made, the interpreter inside. The roots live in the cache (``hosts/<name>/``), are made
once by ``buildkit host create``, verified before each use, and are never changed by
what runs in them (every run gets a throw-away overlay).
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from typing import Any

from ..errors import InputError, did_you_mean

_MAKERS = {"debian": "debian", "musl-cpython": "musl"}


@dataclass(frozen=True, kw_only=True)
class Source:
    """A pinned download a root is made from."""

    name: str
    url: str
    sha256: str
    what: str  # where it comes from, for the record (a Debian package and version)


@dataclass(frozen=True, kw_only=True)
class HostSpec:
    name: str
    target: str
    kind: str  # "debian" or "musl-cpython"
    qemu: str  # QEMU user-mode architecture, e.g. aarch64
    python: str  # interpreter path inside the root
    python_version: str  # X.Y it must report
    builder: bool
    oldest_glibc: bool = False  # runs the native binaries of a target this machine runs
    suite: str = ""
    arch: str = ""
    packages: tuple[str, ...] = ()
    sources: tuple[Source, ...] = field(default=())

    def digest(self) -> str:
        """What decides the root's contents: a changed spec, or a changed way of making
        it (the module that does), means a new root."""
        maker = files("buildkit").joinpath(f"hosts/{_MAKERS[self.kind]}.py").read_bytes()
        doc = {
            "kind": self.kind,
            "maker": hashlib.sha256(maker).hexdigest(),
            "target": self.target,
            "python": [self.python, self.python_version],
            "suite": self.suite,
            "arch": self.arch,
            "packages": sorted(self.packages),
            "sources": sorted((s.name, s.sha256) for s in self.sources),
        }
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()

    def source(self, name: str) -> Source:
        return next(s for s in self.sources if s.name == name)


def _load(doc: dict[str, Any]) -> dict[str, HostSpec]:
    out = {}
    for name, row in doc.items():
        out[name] = HostSpec(
            name=name,
            target=row["target"],
            kind=row["kind"],
            qemu=row["qemu"],
            python=row["python"]["path"],
            python_version=row["python"]["version"],
            builder=bool(row.get("builder", False)),
            oldest_glibc=bool(row.get("oldest_glibc", False)),
            suite=row.get("suite", ""),
            arch=row.get("arch", ""),
            packages=tuple(row.get("packages", ())),
            sources=tuple(
                Source(name=key, url=s["url"], sha256=s["sha256"], what=s["what"])
                for key, s in sorted(row.get("sources", {}).items())
            ),
        )
    return out


@cache
def all_hosts() -> dict[str, HostSpec]:
    text = files("buildkit").joinpath("data/hosts.toml").read_text(encoding="utf-8")
    return _load(tomllib.loads(text))


def get(name: str) -> HostSpec:
    try:
        return all_hosts()[name]
    except KeyError:
        raise InputError(
            f"unknown emulated host {name!r}{did_you_mean(name, all_hosts())}",
            hint="hosts: " + ", ".join(all_hosts()),
        ) from None
