"""What an audit says about one native file: each check in one of four states, with the
evidence seen. A file that cannot be parsed is a finding of its own, never a pass."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NOT_APPLICABLE = "n/a"
    UNKNOWN = "unknown"


@dataclass(frozen=True, kw_only=True)
class Check:
    name: str
    state: State
    evidence: str


@dataclass(frozen=True, kw_only=True)
class FileReport:
    path: str  # as shown to people: a file, or "archive!member"
    format: str  # elf | unparseable
    # executable | pie-executable | static | static-pie | shared-library | python-extension
    kind: str
    arch: str
    libc: str  # glibc | musl | none | unknown
    checks: tuple[Check, ...]

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)
