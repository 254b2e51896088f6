"""From a recipe's hardening policy to the compiler and linker flags that implement it.

The mapping is data (``buildkit/data/hardening.toml``), per check and architecture.
Recipes without a ``[hardening]`` table get :data:`DEFAULT_REQUIRE`.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

from .recipe import Hardening

DEFAULT_REQUIRE = ("relro-full", "canary", "nx", "pie", "fortify", "glibc")


@dataclass(frozen=True, kw_only=True)
class Flags:
    cflags: tuple[str, ...]
    ldflags: tuple[str, ...]


@cache
def _table() -> dict[str, Any]:
    text = files("buildkit").joinpath("data/hardening.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def required(policy: Hardening | None) -> tuple[str, ...]:
    return policy.require if policy is not None else DEFAULT_REQUIRE


def flags_for(
    policy: Hardening | None, arch: str, os: str = "linux", *, shared: bool = False
) -> Flags:
    """The flags for every required check on ``os``/``arch``, in policy order, without
    repeats; ``shared``: for a shared object (an extension module), which is PIC, not PIE."""
    cflags: list[str] = []
    ldflags: list[str] = []
    for check in required(policy):
        if shared and check == "pie":
            continue
        one = check_flags(check, arch, os)
        cflags += [f for f in one.cflags if f not in cflags]
        ldflags += [f for f in one.ldflags if f not in ldflags]
    return Flags(cflags=tuple(cflags), ldflags=tuple(ldflags))


def check_flags(check: str, arch: str, os: str = "linux") -> Flags:
    """The flags that put one policy check into code for ``os``/``arch`` (none for a
    check the audit only verifies)."""
    rows = _table().get(check, {})
    cflags: list[str] = []
    ldflags: list[str] = []
    for row in (rows.get("any", {}), rows.get(os, {}), rows.get(arch, {})):
        cflags += [f for f in row.get("cflags", []) if f not in cflags]
        ldflags += [f for f in row.get("ldflags", []) if f not in ldflags]
    return Flags(cflags=tuple(cflags), ldflags=tuple(ldflags))
