"""The audit as a JSON document (schema ``buildkit-hardening/1``, see
``buildkit/data/hardening-report.schema.json``) and as a Markdown summary for a pull
request comment. Both are deterministic: no clock, no absolute machine paths beyond the
ones given."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from .. import __version__
from ..recipe import Hardening, Waiver
from .findings import ALL_CHECKS, State
from .policy import GateResult, Outcome
from .run import AuditResult

SCHEMA = "buildkit-hardening/1"


def _lief_version() -> str:
    try:
        return version("lief")
    except PackageNotFoundError:
        return "unknown"


CHECKS: dict[str, str] = {
    "relro": "RELRO: relocations read-only after start (full: with bind-now)",
    "canary": "stack protector (__stack_chk_*)",
    "nx": "non-executable stack",
    "pie": "position-independent executable (ASLR)",
    "fortify": "FORTIFY_SOURCE: checked libc calls (__*_chk)",
    "rpath": "no RPATH/RUNPATH outside the artifact ($ORIGIN is fine)",
    "stripped": "no .symtab symbol table shipped",
    "cet": "x86-64 CET: IBT and SHSTK marked in the GNU property note",
    "bti": "aarch64 BTI and PAC marked in the GNU property note",
    "glibc": "needs no glibc symbol newer than the oldest glibc the targets promise (2.17)",
    "nx-heap": "non-executable heap (MH_NO_HEAP_EXECUTION; always on arm64)",
    "codesign": "Mach-O code signature (LC_CODE_SIGNATURE)",
    "hardened-runtime": "Mach-O hardened runtime (CS_RUNTIME)",
    "pagezero": "Mach-O __PAGEZERO guard segment",
    "seccomp": 'a seccomp filter the program installs itself (seccomp = "enforce")',
    "parse": "the file could be parsed",
}


def document(result: AuditResult, gate: GateResult | None) -> dict[str, Any]:
    files = []
    for r in result.files:
        member = r.path[len(r.artifact) + 1 :] if r.path.startswith(r.artifact + "!") else ""
        files.append(
            {
                "path": r.path,
                "artifact": r.artifact,
                "member": member,
                "format": r.format,
                "kind": r.kind,
                "arch": r.arch,
                "libc": r.libc,
                "component": r.component.value,
                "origin": r.origin,
                "checks": {
                    c.name: {"state": c.state.value, "evidence": c.evidence} for c in r.checks
                },
            }
        )
    artifacts = Counter(r.artifact for r in result.files)
    return {
        "_schema": SCHEMA,
        "tool": {"name": "buildkit", "version": __version__, "lief": _lief_version()},
        "checks": {name: CHECKS[name] for name in (*ALL_CHECKS, "parse")},
        "artifacts": [{"path": a, "native_files": n} for a, n in sorted(artifacts.items())],
        "files": files,
        "problems": [{"path": p.path, "reason": p.reason} for p in result.problems],
        "not_audited": [{"path": n.path, "reason": n.reason} for n in result.not_audited],
        "policy": None if gate is None else policy_document(gate),
    }


def policy_document(gate: GateResult) -> dict[str, Any]:
    return {
        "require": list(gate.require),
        "scope": gate.scope,
        **({"glibc": gate.glibc} if gate.glibc else {}),
        "passed": gate.passed,
        "summary": gate.summary(),
        "verdicts": [
            {
                "path": v.path,
                "requirement": v.requirement,
                "check": v.check,
                "outcome": v.outcome,
                "evidence": v.evidence,
                "waiver": v.waiver,
            }
            for v in gate.verdicts
        ],
        "unused_waivers": list(gate.unused_waivers),
        "waivers": [
            {
                "path": w.path,
                "checks": list(w.checks),
                "reason": w.reason,
                "expires": w.expires.isoformat(),
            }
            for w in gate.waivers
        ],
    }


def policy_from_document(doc: dict[str, Any]) -> Hardening:
    """The policy a report was gated with (its ``policy`` section), to gate again."""
    return Hardening(
        require=tuple(doc["require"]),
        scope=str(doc["scope"]),
        glibc=str(doc.get("glibc", "")),
        waivers=tuple(
            Waiver(
                path=w["path"],
                checks=tuple(w["checks"]),
                reason=w["reason"],
                expires=dt.date.fromisoformat(w["expires"]),
            )
            for w in doc.get("waivers", [])
        ),
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(result: AuditResult, gate: GateResult | None, *, title: str) -> str:
    """A short summary for a pull-request comment: the gate, then what needs attention."""
    out = [f"## Hardening audit: {title}", ""]
    if gate is not None:
        mark = "✅ passed" if gate.passed else "❌ failed"
        out += [
            f"**Policy gate {mark}** — require {', '.join(gate.require) or 'nothing'}, "
            f"scope `{gate.scope}`: {gate.summary()}.",
            "",
        ]
    by_component: Counter[tuple[str, str]] = Counter()
    for r in result.files:
        failing = any(c.state is State.FAIL for c in r.checks)
        by_component[(r.component.value, "fail" if failing else "ok")] += 1
    out += ["| component | native files | failing any check |", "|---|---:|---:|"]
    for component in sorted({c for c, _ in by_component}):
        total = by_component[(component, "ok")] + by_component[(component, "fail")]
        out.append(f"| {component} | {total} | {by_component[(component, 'fail')]} |")
    out.append("")
    if gate is not None and gate.failures:
        out += ["### Gate failures", "", "| file | check | evidence | note |", "|---|---|---|---|"]
        out += [
            f"| `{_cell(v.path)}` | {v.requirement} | {_cell(v.evidence)} | {_cell(v.waiver)} |"
            for v in gate.failures
        ]
        out.append("")
    if gate is not None and gate.waived:
        out += ["### Waived", "", "| file | check | waiver |", "|---|---|---|"]
        out += [f"| `{_cell(v.path)}` | {v.requirement} | {_cell(v.waiver)} |" for v in gate.waived]
        out.append("")
    if gate is not None and gate.unused_waivers:
        out += ["Waivers that matched nothing: " + "; ".join(gate.unused_waivers), ""]
    if result.problems or result.unparseable:
        out += ["### Unreadable", ""]
        out += [f"- `{_cell(p.path)}`: {_cell(p.reason)}" for p in result.problems]
        out += [f"- `{_cell(f.path)}`: {_cell(f.checks[0].evidence)}" for f in result.unparseable]
        out.append("")
    if result.not_audited:
        out += [f"{len(result.not_audited)} file(s) not audited (see the JSON report).", ""]
    out.append("Full matrix: the `.hardening.html` report; every check and its evidence: `.json`.")
    return "\n".join(out) + "\n"


def gate_line(gate: GateResult) -> str:
    failures = gate.failures
    if gate.unreadable and not failures:
        shown = ", ".join(gate.unreadable[:5])
        return f"hardening gate failed: {len(gate.unreadable)} input(s) could not be read: {shown}"
    if not failures:
        return f"hardening gate passed ({gate.summary()})"
    shown = "; ".join(f"{v.path}: {v.requirement} ({v.evidence})" for v in failures[:5])
    more = f"; and {len(failures) - 5} more" if len(failures) > 5 else ""
    return f"hardening gate failed: {shown}{more}"


__all__ = ["CHECKS", "SCHEMA", "Outcome", "document", "gate_line", "markdown"]
