"""Count log lines and the lines matching patterns, in C (logscan._scan)."""

from __future__ import annotations

from dataclasses import dataclass

from ._scan import scan as _scan

__version__ = "1.0.0"


@dataclass(frozen=True)
class Counts:
    lines: int
    matching: int
    per_pattern: dict[str, int]


def count(data: bytes, patterns: list[str]) -> Counts:
    """Lines in ``data``, lines holding any pattern, and lines holding each pattern."""
    encoded = tuple(p.encode() for p in patterns)
    lines, matching, per = _scan(data, encoded)
    return Counts(lines=lines, matching=matching, per_pattern=dict(zip(patterns, per, strict=True)))
