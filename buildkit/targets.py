"""Target registry, read from ``buildkit/data/targets.toml``.

A target is data: its wheel platform tags, uv platform, marker values and the kind of host
that builds native binaries for it. Tag lists and pex complete platforms are computed from
those rows; no target name appears in code.
"""

from __future__ import annotations

import platform
import sys
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from typing import Any

from packaging import tags

from .errors import InputError, did_you_mean


@dataclass(frozen=True, kw_only=True)
class Target:
    name: str
    os: str
    arch: str
    libc: str
    python: str
    uv_platform: str
    platform_tags: tuple[str, ...]
    markers: tuple[tuple[str, str], ...]
    native_builder: str
    cibw_platform_tag: str
    cibw_arch: str
    uv_env: tuple[tuple[str, str], ...] = field(default=())
    zig_target: str = ""  # `zig cc -target` of the hermetic toolchain; "": none
    glibc_baseline: str = ""  # newest GLIBC_ version its ELF files may need; "": not glibc

    def wheel_tags(self, python: str) -> list[tags.Tag]:
        """Every wheel tag this target accepts for CPython ``python`` (X.Y), best first."""
        version = _version_tuple(python)
        return [
            *tags.cpython_tags(version, None, self.platform_tags),
            *tags.compatible_tags(version, f"cp{version[0]}{version[1]}", self.platform_tags),
        ]

    def marker_environment(self, python: str) -> dict[str, str]:
        env = {
            "implementation_name": "cpython",
            "implementation_version": f"{python}.0",
            "platform_python_implementation": "CPython",
            "python_full_version": f"{python}.0",
            "python_version": python,
        }
        env.update(dict(self.markers))
        return env

    def complete_platform(self, python: str) -> dict[str, Any]:
        """A pex ``--complete-platform`` document for this target and Python."""
        return {
            "marker_environment": self.marker_environment(python),
            "compatible_tags": [str(t) for t in self.wheel_tags(python)],
        }

    def is_host(self) -> bool:
        """True when this machine runs binaries of this target natively."""
        return (self.os, self.arch, self.libc) == host_triple()


def _version_tuple(python: str) -> tuple[int, int]:
    major, _, minor = python.partition(".")
    return int(major), int(minor)


def host_triple() -> tuple[str, str, str]:
    machine = platform.machine().lower()
    arch = {"amd64": "x86_64", "arm64": "aarch64" if sys.platform == "linux" else "arm64"}.get(
        machine, machine
    )
    if sys.platform == "darwin":
        return "darwin", arch, "darwin"
    libc = "glibc" if platform.libc_ver()[0] == "glibc" else "musl"
    return sys.platform, arch, libc


def _load(doc: dict[str, Any]) -> dict[str, Target]:
    out = {}
    for name, row in doc.items():
        out[name] = Target(
            name=name,
            os=row["os"],
            arch=row["arch"],
            libc=row["libc"],
            python=row["python"],
            uv_platform=row["uv_platform"],
            platform_tags=tuple(row["platform_tags"]),
            markers=tuple(sorted(row["markers"].items())),
            native_builder=row["native_builder"],
            cibw_platform_tag=row["cibw_platform_tag"],
            cibw_arch=row["cibw_arch"],
            uv_env=tuple(sorted(row.get("uv_env", {}).items())),
            zig_target=row.get("zig_target", ""),
            glibc_baseline=row.get("glibc_baseline", ""),
        )
    return out


@cache
def all_targets() -> dict[str, Target]:
    text = files("buildkit").joinpath("data/targets.toml").read_text(encoding="utf-8")
    return _load(tomllib.loads(text))


#: What people also call an OS or an architecture (uname, Go, Docker, Rust).
ALIASES = {
    "x86_64": "amd64", "x86-64": "amd64", "x64": "amd64",
    "aarch64": "arm64", "armv8": "arm64",
    "macos": "darwin", "osx": "darwin", "mac": "darwin", "apple": "darwin",
    "musl": "alpine", "musllinux": "alpine", "manylinux": "linux", "gnu": "linux",
}  # fmt: skip


def suggest(name: str, choices: Iterable[str]) -> str:
    """``; did you mean '<target>'?`` for a target named by a common alias
    (linux-x86_64, macos-aarch64) or misspelt, or nothing."""
    choices = list(choices)
    words = name.lower().replace("_64", "-64").replace("x86-64", "x86_64").split("-")
    spelt = "-".join(ALIASES.get(w, w) for w in words if w)
    if spelt in choices and spelt != name:
        return f"; did you mean {spelt!r}?"
    return did_you_mean(spelt, choices) or did_you_mean(name, choices)


def get(name: str) -> Target:
    try:
        return all_targets()[name]
    except KeyError:
        raise InputError(
            f"unknown target {name!r}{suggest(name, all_targets())}",
            hint="targets: " + ", ".join(all_targets()),
        ) from None


def host_target() -> Target | None:
    return next((t for t in all_targets().values() if t.is_host()), None)
