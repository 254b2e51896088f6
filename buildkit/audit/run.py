"""Audit paths: every native file found, each with its checks and its component."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from . import elf, macho
from .components import classify
from .findings import FileReport
from .walk import Native, NotAudited, Problem, walk

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class AuditResult:
    files: tuple[FileReport, ...]
    problems: tuple[Problem, ...]  # inputs that could not be read (exit code 2)
    not_audited: tuple[NotAudited, ...]

    @property
    def unparseable(self) -> tuple[FileReport, ...]:
        return tuple(f for f in self.files if f.check("parse") is not None)


def audit_native(item: Native) -> list[FileReport]:
    reports = (
        [elf.audit(item.data, item.path)]
        if item.format == "elf"
        else macho.audit(item.data, item.path)
    )
    component, origin = classify(item.member, item.artifact, item.context)
    return [r.placed(component=component, origin=origin, artifact=item.artifact) for r in reports]


def audit_paths(paths: list[Path], names: dict[Path, str] | None = None) -> AuditResult:
    reports: list[FileReport] = []
    problems: list[Problem] = []
    skipped: list[NotAudited] = []
    for item in walk(paths, names):
        if isinstance(item, Native):
            log.debug("auditing %s", item.path)
            reports += audit_native(item)
        elif isinstance(item, Problem):
            problems.append(item)
        else:
            skipped.append(item)
    return AuditResult(files=tuple(reports), problems=tuple(problems), not_audited=tuple(skipped))
