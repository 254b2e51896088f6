"""One verdict per artifact, the first thing every report says: does it pass the gate,
and if not, which checks fail on which of its files; what was waived (until when); what
fails outside the gate's scope (reported, not gated)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from .findings import FileReport
from .policy import GateResult, Outcome, Verdict, in_scope
from .run import AuditResult

SHOWN = 3  # files named per failing check in a one-line verdict


@dataclass(frozen=True, kw_only=True)
class ArtifactVerdict:
    artifact: str
    passed: bool | None  # None: audited without a policy
    failures: tuple[tuple[str, tuple[str, ...]], ...]  # (check, members failing it)
    waived: tuple[str, ...]  # "member: check — reason (waiver … until …)"
    in_scope: int  # native files the gate judged
    files: int  # native files audited
    reported: int  # files failing a check outside the gate (or with no policy)
    unreadable: tuple[str, ...] = ()

    @property
    def word(self) -> str:
        if self.passed is None:
            return "no policy"
        return "passes the gate" if self.passed else "FAILS the gate"

    def line(self) -> str:
        name = self.artifact.rsplit("/", 1)[-1]
        if self.unreadable:
            return f"{name}: FAILS: could not be read ({'; '.join(self.unreadable)})"
        if self.passed is None:
            return f"{name}: no policy: {self.reported} of {self.files} native file(s) fail a check"
        parts = []
        for check, members in self.failures:
            shown = ", ".join(members[:SHOWN])
            more = f" and {len(members) - SHOWN} more" if len(members) > SHOWN else ""
            parts.append(f"{check} on {shown}{more}")
        head = f"{name}: {self.word}"
        if parts:
            head += ": " + "; ".join(parts)
        else:
            head += f" ({self.in_scope} of {self.files} native file(s) in scope"
            head += f", {len(self.waived)} waived" if self.waived else ""
            head += ")"
        if self.reported:
            head += f"; {self.reported} file(s) outside the gate fail a check (reported)"
        return head


def _short(report: FileReport) -> str:
    return report.member or report.path.rsplit("/", 1)[-1]


def verdicts(result: AuditResult, gate: GateResult | None) -> tuple[ArtifactVerdict, ...]:
    by_artifact: dict[str, list[FileReport]] = defaultdict(list)
    for report in result.files:
        by_artifact[report.artifact or report.path].append(report)
    unreadable: dict[str, list[str]] = defaultdict(list)
    for problem in result.problems:
        unreadable[problem.artifact or problem.path].append(problem.reason)
    gated: dict[str, list[Verdict]] = defaultdict(list)
    for v in gate.verdicts if gate is not None else ():
        gated[v.path].append(v)
    out = []
    for artifact in sorted(set(by_artifact) | set(unreadable)):
        files = by_artifact.get(artifact, [])
        failures: dict[str, list[str]] = defaultdict(list)
        waived: list[str] = []
        scoped = [r for r in files if gate is not None and in_scope(r, gate.scope)]
        for report in scoped:
            for v in gated.get(report.path, ()):
                if v.outcome == Outcome.FAIL:
                    failures[v.requirement].append(_short(report))
                elif v.outcome == Outcome.WAIVED:
                    waived.append(f"{_short(report)}: {v.requirement} — {v.waiver}")
        outside = [r for r in files if r not in scoped]
        out.append(
            ArtifactVerdict(
                artifact=artifact,
                passed=None if gate is None else not failures and not unreadable.get(artifact),
                failures=tuple((c, tuple(m)) for c, m in failures.items()),
                waived=tuple(waived),
                in_scope=len(scoped),
                files=len(files),
                reported=sum(1 for r in outside if r.failing),
                unreadable=tuple(unreadable.get(artifact, ())),
            )
        )
    return tuple(out)
