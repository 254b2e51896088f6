"""The audit as SARIF 2.1.0 for GitHub code scanning.

One rule per check with a stable id (``BK/<check>``), a name, help text and a
``security-severity``; one result per failing check of a native file. A failure the
policy gate counts is an ``error``; a waived one carries the waiver as an external
suppression; a failure outside the gate's scope (or with no policy) is a ``warning``.
Locations are the artifacts' paths relative to ``root``; the member inside an archive is
named in the message and in a logical location. ``partialFingerprints`` identify the
file and check, not the line, so alerts are not duplicated from one release to the next.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from .. import __version__
from .findings import ALL_CHECKS, State
from .policy import GateResult, Outcome
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
    "nx-heap": "NonExecutableHeap",
    "codesign": "CodeSignature",
    "hardened-runtime": "HardenedRuntime",
    "pagezero": "PageZero",
    "parse": "ParseableNativeFile",
}
RULE_IDS = tuple((*ALL_CHECKS, "parse"))


def _uri(artifact: str, root: Path | None) -> str:
    path = Path(artifact)
    if root is not None and path.is_absolute():
        try:
            return path.relative_to(root.resolve()).as_posix()
        except ValueError:
            return os.path.relpath(path, root.resolve()).replace(os.sep, "/")
    return path.as_posix()


#: Checks fixed by something other than compiler flags.
REMEDY = {
    "seccomp": (
        'Build the native binary with [hardening] seccomp = "enforce": the recipe\'s checks '
        "record the system calls it makes and buildkit writes the filter into it."
    ),
}


def _help(check: str) -> dict[str, str]:
    if check in REMEDY:
        return {"text": REMEDY[check], "markdown": f"**{check}** — {REMEDY[check]}"}
    return {
        "text": f"{CHECKS[check]}. Rebuild with the flags buildkit injects for this check "
        "(recipe [hardening].require), or waive it with a reason and an expiry date.",
        "markdown": f"**{check}** — {CHECKS[check]}.\n\nRebuild with the flags buildkit "
        "injects for `[hardening].require`, or add a `[[hardening.waivers]]` entry with a "
        "reason and an expiry date.",
    }


def _rule(check: str) -> dict[str, Any]:
    return {
        "id": f"BK/{check}",
        "name": NAMES[check],
        "shortDescription": {"text": CHECKS[check]},
        "fullDescription": {"text": f"buildkit hardening check '{check}': {CHECKS[check]}."},
        "help": _help(check),
        "defaultConfiguration": {"level": "error"},
        "properties": {
            "security-severity": f"{SEVERITY[check]:.1f}",
            "tags": ["security", "hardening"],
        },
    }


def document(
    result: AuditResult, gate: GateResult | None, *, root: Path | None = None
) -> dict[str, Any]:
    verdicts = {(v.path, v.check): v for v in gate.verdicts} if gate is not None else {}
    results: list[dict[str, Any]] = []
    for report in result.files:
        member = report.path[len(report.artifact) + 1 :] if "!" in report.path else ""
        for check in report.checks:
            if check.state is not State.FAIL:
                continue
            verdict = verdicts.get((report.path, check.name))
            level = "warning"
            suppressions: list[dict[str, Any]] = []
            if verdict is not None and verdict.outcome == Outcome.FAIL:
                level = "error"
            elif verdict is not None and verdict.outcome == Outcome.WAIVED:
                level = "note"
                suppressions = [{"kind": "external", "justification": verdict.waiver}]
            where = f"{member} in {report.artifact}" if member else report.artifact
            text = (
                f"{where} ({report.component.value}"
                f"{': ' + report.origin if report.origin else ''}, {report.kind}, "
                f"{report.arch}): {check.name} fails: {check.evidence}"
            )
            if verdict is not None and verdict.waiver:
                text += f" [{verdict.waiver}]"
            fingerprint = hashlib.sha256(
                f"{Path(report.artifact).name}!{member}!{check.name}".encode()
            ).hexdigest()
            entry: dict[str, Any] = {
                "ruleId": f"BK/{check.name}",
                "ruleIndex": RULE_IDS.index(check.name),
                "level": level,
                "message": {"text": text},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": _uri(report.artifact, root)},
                            "region": {"startLine": 1},
                        },
                        "logicalLocations": [{"fullyQualifiedName": report.path, "kind": "module"}],
                    }
                ],
                "partialFingerprints": {"buildkitNativeFileCheck/v1": fingerprint},
                "properties": {"component": report.component.value, "origin": report.origin},
            }
            if suppressions:
                entry["suppressions"] = suppressions
            results.append(entry)
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "buildkit",
                        "version": __version__,
                        "rules": [_rule(c) for c in RULE_IDS],
                    }
                },
                "results": results,
                "columnKind": "unicodeCodePoints",
            }
        ],
    }
