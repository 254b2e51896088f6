"""Audit paths: every native file found, each with its checks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import elf
from .findings import FileReport
from .walk import Native, NotAudited, walk


@dataclass(frozen=True, kw_only=True)
class AuditResult:
    files: tuple[FileReport, ...]
    not_audited: tuple[NotAudited, ...]


def audit_paths(paths: list[Path]) -> AuditResult:
    reports: list[FileReport] = []
    skipped: list[NotAudited] = []
    for item in walk(paths):
        if isinstance(item, Native):
            reports.append(elf.audit(item.data, item.path))
        else:
            skipped.append(item)
    return AuditResult(files=tuple(reports), not_audited=tuple(skipped))
