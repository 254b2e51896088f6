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
from .baseline import Comparison
from .findings import ALL_CHECKS, FileReport, State
from .policy import GateResult, Outcome, in_scope
from .remedy import Remedy, remedy
from .run import AuditResult
from .verdict import ArtifactVerdict, verdicts

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
    "wx": "no segment both writable and executable",
    "stack-clash": "stack clash protection (-fstack-clash-protection), where the file records "
    "its flags (buildkit's toolchain note)",
    "parse": "the file could be parsed",
}


def fix_of(report: FileReport, gate: GateResult | None) -> Remedy | None:
    """Who can fix the checks ``report`` fails, and how (None when it fails none)."""
    failing = report.failing
    if not failing:
        return None
    return remedy(report, failing, gate.require if gate is not None else None)


def _verdict_doc(v: ArtifactVerdict) -> dict[str, Any]:
    return {
        "artifact": v.artifact,
        "passed": v.passed,
        "line": v.line(),
        "failures": [{"check": c, "files": list(m)} for c, m in v.failures],
        "waived": list(v.waived),
        "in_scope": v.in_scope,
        "native_files": v.files,
        "reported": v.reported,
        "unreadable": list(v.unreadable),
    }


def baseline_document(diff: Comparison) -> dict[str, Any]:
    def rows(changes: tuple[Any, ...]) -> list[dict[str, str]]:
        return [
            {"path": c.path, "identity": c.identity, "check": c.check, "evidence": c.evidence}
            for c in changes
        ]

    return {
        "folder": diff.baseline,
        "summary": diff.summary(),
        "new": rows(diff.new),
        "fixed": rows(diff.fixed),
        "unchanged": rows(diff.unchanged),
    }


def document(
    result: AuditResult, gate: GateResult | None, *, baseline: Comparison | None = None
) -> dict[str, Any]:
    files = []
    for r in result.files:
        fix = fix_of(r, gate)
        files.append(
            {
                "path": r.path,
                "artifact": r.artifact,
                "member": r.member,
                "format": r.format,
                "kind": r.kind,
                "arch": r.arch,
                "libc": r.libc,
                "component": r.component.value,
                "origin": r.origin,
                "source": r.source,
                "sha256": r.sha256,
                "compiler": r.compiler,
                "in_scope": None if gate is None else in_scope(r, gate.scope),
                "checks": {
                    c.name: {"state": c.state.value, "evidence": c.evidence} for c in r.checks
                },
                **({"owner": fix.owner, "remedy": list(fix.actions)} if fix is not None else {}),
            }
        )
    artifacts = Counter(r.artifact for r in result.files)
    return {
        "_schema": SCHEMA,
        "tool": {"name": "buildkit", "version": __version__, "lief": _lief_version()},
        "checks": {name: CHECKS[name] for name in (*ALL_CHECKS, "parse")},
        "verdicts": [_verdict_doc(v) for v in verdicts(result, gate)],
        "artifacts": [{"path": a, "native_files": n} for a, n in sorted(artifacts.items())],
        "files": files,
        "problems": [{"path": p.path, "reason": p.reason} for p in result.problems],
        "not_audited": [{"path": n.path, "reason": n.reason} for n in result.not_audited],
        "policy": None if gate is None else policy_document(gate),
        "baseline": None if baseline is None else baseline_document(baseline),
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


_MARK = {True: "✅", False: "❌", None: "•"}
ROWS = 30  # files listed per owner in the Markdown report


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def _where(r: FileReport) -> str:
    return f"{_name(r.artifact)}!{r.member}" if r.member else _name(r.path)


def owners(result: AuditResult) -> list[tuple[tuple[str, str, str], list[FileReport]]]:
    """The files that fail a check, grouped by who can fix them (component, origin,
    source), our own code first, then the gate's scope, then by name."""
    groups: dict[tuple[str, str, str], list[FileReport]] = {}
    for r in result.files:
        if r.failing:
            groups.setdefault((r.component.value, r.origin, r.source), []).append(r)
    order = {c: i for i, c in enumerate(("own", "toolchain", "interpreter", "wheel", "system"))}
    return sorted(groups.items(), key=lambda kv: (order.get(kv[0][0], 9), kv[0]))


def _gate_cell(r: FileReport, gate: GateResult | None) -> str:
    """What the gate made of a file's failures: failed, waived (until), with its note."""
    if gate is None or not in_scope(r, gate.scope):
        return "reported"
    words = []
    for v in gate.verdicts:
        if v.path != r.path or v.outcome not in (Outcome.FAIL, Outcome.WAIVED):
            continue
        word = "**fails**" if v.outcome == Outcome.FAIL else "waived"
        words.append(f"{v.requirement} {word}" + (f": {v.waiver}" if v.waiver else ""))
    return "; ".join(words) or "passes"


def _diff_section(diff: Comparison) -> list[str]:
    out = [f"### Since the baseline: {diff.summary()}", ""]
    for title, changes in (("New failures", diff.new), ("Fixed", diff.fixed)):
        if not changes:
            continue
        out += [f"**{title}**", "", "| file | check | evidence |", "|---|---|---|"]
        out += [
            f"| `{_cell(c.identity)}` | {c.check} | {_cell(c.evidence)} |" for c in changes[:ROWS]
        ]
        if len(changes) > ROWS:
            out.append(f"| … and {len(changes) - ROWS} more (see the JSON report) | | |")
        out.append("")
    return out


def markdown(
    result: AuditResult,
    gate: GateResult | None,
    *,
    title: str,
    baseline: Comparison | None = None,
) -> str:
    """For a pull-request comment: what changed since the baseline, one verdict per
    artifact, then the failing files grouped by who can fix them and how."""
    out = [f"## Hardening audit: {title}", ""]
    if baseline is not None:
        out += _diff_section(baseline)
    out += ["### Verdict", ""]
    if gate is not None:
        mark = "✅ passed" if gate.passed else "❌ failed"
        out += [
            f"**Policy gate {mark}**: require {', '.join(gate.require) or 'nothing'}, "
            f"scope `{gate.scope}` ({SCOPES.get(gate.scope, gate.scope)}): {gate.summary()}.",
            "",
        ]
    out += [f"- {_MARK[v.passed]} {_cell(v.line())}" for v in verdicts(result, gate)]
    out.append("")
    groups = owners(result)
    if groups:
        out += ["### Failing files, by who can fix them", ""]
    for (component, _origin, _source), reports in groups:
        fix = fix_of(reports[0], gate)
        assert fix is not None
        gated = gate is not None and in_scope(reports[0], gate.scope)
        status = "in the gate's scope" if gated else "reported, not gated"
        out += [f"#### {_cell(fix.owner)}", "", f"Component `{component}`, {status}.", ""]
        out += ["| file | failing checks | evidence | gate |", "|---|---|---|---|"]
        for r in reports[:ROWS]:
            evidence = "; ".join(
                f"{c.name}: {c.evidence}" for c in r.checks if c.state is State.FAIL
            )
            out.append(
                f"| `{_cell(_where(r))}` | {', '.join(r.failing)} | {_cell(evidence)} "
                f"| {_cell(_gate_cell(r, gate))} |"
            )
        if len(reports) > ROWS:
            out.append(f"| … and {len(reports) - ROWS} more (see the JSON report) | | | |")
        checks = tuple(dict.fromkeys(c for r in reports for c in r.failing))
        actions = remedy(reports[0], checks, gate.require if gate is not None else None).actions
        out += ["", "How to fix:", ""] + [f"- {_cell(a)}" for a in actions] + [""]
    if gate is not None and gate.waived:
        out += ["### Waived", "", "| file | check | waiver (until) |", "|---|---|---|"]
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


SCOPES = {
    "own": "the code buildkit compiled: the recipe's and the toolchain's",
    "all": "every native file",
}


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
