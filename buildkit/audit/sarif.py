"""The audit as SARIF 2.1.0 for GitHub code scanning.

One run per recipe and target (its ``automationDetails.id`` is the code-scanning
category). One rule per check and component (``BK/<check>/<component>``): its help says
who owns such a file and how to fix it (the flags for own code; sdist, upstream or
waiver for a wheel; the toolchain for the interpreter), with a ``security-severity``.
One result per failing check of a native file, its message naming the file's owner and
the first remedy. A failure the gate counts is an ``error``; a waived one a ``note``
with the waiver as an external suppression; one outside the gate's scope (or with no
policy) a ``warning``. With a baseline, ``baselineState`` says ``new`` or ``unchanged``.
Locations are the artifacts' paths relative to ``root``; the member inside an archive is
named in the message and in a logical location. ``partialFingerprints`` identify the
file and check across versions (identity.py), so alerts carry over between releases.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from .. import __version__
from .baseline import Comparison
from .findings import Check, Component, FileReport, State
from .identity import category, identity
from .policy import GateResult, Outcome, Verdict
from .remedy import remedy, rule_help
from .report import CHECKS
from .run import AuditResult

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SEVERITY = {
    "relro": 6.5,
    "canary": 7.5,
    "nx": 8.0,
    "pie": 6.5,
    "fortify": 5.5,
    "rpath": 5.0,
    "stripped": 2.0,
    "cet": 4.0,
    "bti": 4.0,
    "glibc": 7.0,
    "seccomp": 3.0,
    "wx": 8.0,
    "stack-clash": 5.0,
    "nx-heap": 6.0,
    "codesign": 6.0,
    "hardened-runtime": 5.0,
    "pagezero": 5.0,
    "parse": 5.0,
}
NAMES = {
    "relro": "FullRelro",
    "canary": "StackProtector",
    "nx": "NonExecutableStack",
    "pie": "PositionIndependentExecutable",
    "fortify": "FortifySource",
    "rpath": "NoRpathOutsideArtifact",
    "stripped": "SymbolsStripped",
    "cet": "ControlFlowEnforcement",
    "bti": "BranchTargetIdentification",
    "glibc": "OldestGlibcBaseline",
    "seccomp": "SeccompFilter",
    "wx": "NoWritableExecutableSegment",
    "stack-clash": "StackClashProtection",
    "nx-heap": "NonExecutableHeap",
    "codesign": "CodeSignature",
    "hardened-runtime": "HardenedRuntime",
    "pagezero": "PageZero",
    "parse": "ParseableNativeFile",
}


def _uri(artifact: str, root: Path | None) -> str:
    path = Path(artifact)
    if root is not None and path.is_absolute():
        try:
            return path.relative_to(root.resolve()).as_posix()
        except ValueError:
            return os.path.relpath(path, root.resolve()).replace(os.sep, "/")
    return path.as_posix()


def _rule(check: str, component: Component) -> dict[str, Any]:
    who, how = rule_help(check, component)
    what = CHECKS[check]
    return {
        "id": f"BK/{check}/{component.value}",
        "name": f"{NAMES[check]}/{component.value.capitalize()}",
        "shortDescription": {"text": f"{what} ({component.value} code)"},
        "fullDescription": {"text": f"buildkit hardening check '{check}': {what}. {who}"},
        "help": {
            "text": f"{what}. {who} {how}",
            "markdown": f"**{check}**: {what}.\n\n{who}\n\n**How to fix:** {how}",
        },
        "defaultConfiguration": {"level": "error"},
        "properties": {
            "security-severity": f"{SEVERITY[check]:.1f}",
            "tags": ["security", "hardening", f"component:{component.value}"],
        },
    }


def _result(
    report: FileReport,
    check: Check,
    verdict: Verdict | None,
    gate: GateResult | None,
    baseline: Comparison | None,
) -> dict[str, Any]:
    level = "warning"  # reported: outside the gate, or no policy
    suppressions: list[dict[str, Any]] = []
    if verdict is not None and verdict.outcome == Outcome.FAIL:
        level = "error"
    elif verdict is not None and verdict.outcome == Outcome.WAIVED:
        level = "note"
        suppressions = [{"kind": "external", "justification": verdict.waiver}]
    member = report.member
    where = f"{member} in {Path(report.artifact).name}" if member else report.artifact
    fix = remedy(report, (check.name,), gate.require if gate is not None else None)
    text = (
        f"{where} ({report.kind}, {report.arch}): {check.name} fails: {check.evidence}. "
        f"Owner: {fix.owner}. Fix: {fix.actions[0]}."
    )
    if verdict is not None and verdict.waiver:
        text += f" [{verdict.waiver}]"
    key = identity(report)
    entry: dict[str, Any] = {
        "ruleId": f"BK/{check.name}/{report.component.value}",
        "level": level,
        "message": {"text": text},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": ""},  # filled in by document()
                    "region": {"startLine": 1},
                },
                "logicalLocations": [{"fullyQualifiedName": report.path, "kind": "module"}],
            }
        ],
        "partialFingerprints": {
            "buildkitNativeFileCheck/v2": hashlib.sha256(f"{key}!{check.name}".encode()).hexdigest()
        },
        "properties": {
            "component": report.component.value,
            "origin": report.origin,
            "source": report.source,
            "owner": fix.owner,
            "remedy": list(fix.actions),
        },
    }
    if baseline is not None:
        entry["baselineState"] = baseline.state(key, check.name)
    if suppressions:
        entry["suppressions"] = suppressions
    return entry


def document(
    result: AuditResult,
    gate: GateResult | None,
    *,
    root: Path | None = None,
    baseline: Comparison | None = None,
) -> dict[str, Any]:
    """One run per recipe and target (``automationDetails.id``
    ``buildkit/<recipe>/<target>/``), so code scanning keeps each one's alerts apart."""
    verdicts = {(v.path, v.check): v for v in gate.verdicts} if gate is not None else {}
    by_category: dict[str, list[FileReport]] = {}
    for report in result.files:
        by_category.setdefault(category(report.artifact or report.path), []).append(report)
    runs = []
    for name, reports in sorted(by_category.items()):
        rules: dict[tuple[str, Component], int] = {}
        results = []
        for report in reports:
            for check in report.checks:
                if check.state is not State.FAIL:
                    continue
                entry = _result(
                    report, check, verdicts.get((report.path, check.name)), gate, baseline
                )
                uri = _uri(report.artifact or report.path, root)
                entry["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] = uri
                entry["ruleIndex"] = rules.setdefault((check.name, report.component), len(rules))
                results.append(entry)
        run: dict[str, Any] = {
            "tool": {
                "driver": {
                    "name": "buildkit",
                    "version": __version__,
                    "rules": [_rule(c, k) for c, k in rules],
                }
            },
            "automationDetails": {"id": name},
            "results": results,
            "columnKind": "unicodeCodePoints",
        }
        if baseline is not None:
            run["properties"] = {
                "baseline": baseline.baseline,
                "baselineSummary": baseline.summary(),
                "fixed": [
                    {"file": c.identity, "check": c.check}
                    for c in baseline.fixed
                    if category(c.path.split("!", 1)[0]) == name
                ],
            }
        runs.append(run)
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": runs}
