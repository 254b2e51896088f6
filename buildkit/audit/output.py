"""The audit's outputs: the reports (JSON, SARIF, Markdown, HTML), written into a folder
each complete or absent (temporary name, then rename), and the terminal table."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

from .findings import ALL_CHECKS

if TYPE_CHECKING:
    from .baseline import Comparison
    from .policy import GateResult
    from .run import AuditResult

FORMATS = ("json", "sarif", "md", "html")
_MODULES = {"json": "report", "sarif": "sarif", "md": "report", "html": "html"}


def prepare(formats: tuple[str, ...]) -> None:
    """Import the renderers of ``formats``, the table's and the gate's (the audit
    command does this while its workers load the parsers)."""
    for name in {"report", "policy", *(_MODULES[f] for f in formats)}:
        importlib.import_module(f"{__package__}.{name}")


def render(
    fmt: str,
    result: AuditResult,
    gate: GateResult | None,
    *,
    title: str,
    root: Path | None,
    baseline: Comparison | None = None,
) -> str:
    from . import html, report, sarif

    if fmt == "json":
        # compact: the C encoder is ten times faster than the indenting one on big audits
        doc = report.document(result, gate, baseline=baseline)
        return json.dumps(doc, sort_keys=True) + "\n"
    if fmt == "sarif":
        doc = sarif.document(result, gate, root=root, baseline=baseline)
        return json.dumps(doc, indent=2) + "\n"
    if fmt == "md":
        return report.markdown(result, gate, title=title, baseline=baseline)
    if fmt == "html":
        return html.render(result, gate, title=title, baseline=baseline)
    raise ValueError(fmt)


def texts(
    stem: str,
    result: AuditResult,
    gate: GateResult | None,
    *,
    formats: tuple[str, ...] = FORMATS,
    root: Path | None = None,
    baseline: Comparison | None = None,
) -> dict[str, str]:
    """``<stem>.hardening.<fmt>`` → its text, for each format. SARIF locations are
    relative to ``root``."""
    return {
        f"{stem}.hardening.{fmt}": render(
            fmt, result, gate, title=stem, root=root, baseline=baseline
        )
        for fmt in formats
    }


def write_reports(
    folder: Path,
    stem: str,
    result: AuditResult,
    gate: GateResult | None,
    *,
    formats: tuple[str, ...] = FORMATS,
    root: Path | None = None,
    baseline: Comparison | None = None,
) -> list[Path]:
    """Write the reports into ``folder`` (each complete or absent, under the folder's
    lock: the release stage's writer); returns the paths written. SARIF locations are
    relative to ``root`` (default: the folder written to)."""
    from ..release.publish import put

    return put(
        folder,
        texts(stem, result, gate, formats=formats, root=root or folder, baseline=baseline),
    )


def table(result: AuditResult, gate: GateResult | None, baseline: Comparison | None = None) -> str:
    """One line per native file (each check's state), what could not be read or was not
    audited, a summary, the gate's verdict with its waivers, one verdict per artifact and
    what changed since the baseline."""
    from .report import gate_line
    from .verdict import verdicts

    names = ALL_CHECKS
    lines = ["  ".join(f"{n[:8]:<8}" for n in names) + "  component     file"]
    failing = 0
    for r in result.files:
        states = {c.name: c.state.value for c in r.checks}
        failing += any(v == "fail" for v in states.values())
        if "parse" in states:
            cells = f"{'unparseable: ' + r.checks[0].evidence:<{10 * len(names) - 2}}"
        else:
            cells = "  ".join(f"{states.get(n, '-'):<8}" for n in names)
        origin = f" ({r.origin})" if r.origin and r.component.value == "wheel" else ""
        lines.append(
            f"{cells}  {r.component.value:<12}  {r.path}{origin} "
            f"[{r.format} {r.kind} {r.arch} {r.libc}]"
        )
    lines += [f"unreadable: {p.path}: {p.reason}" for p in result.problems]
    lines += [f"not audited: {n.path}: {n.reason}" for n in result.not_audited]
    lines.append(
        f"\n{len(result.files)} native file(s): {len(result.files) - failing} pass every "
        f"check, {failing} fail at least one; {len(result.not_audited)} not audited"
    )
    if gate is not None:
        lines.append(gate_line(gate))
        lines += [f"  waived: {v.path}: {v.requirement}: {v.waiver}" for v in gate.waived]
        lines += [f"  {v.path}: {v.requirement}: {v.waiver}" for v in gate.failures if v.waiver]
        lines += [f"  unused waiver: {w}" for w in gate.unused_waivers]
    lines += [v.line() for v in verdicts(result, gate)]
    if baseline is not None:
        lines.append(baseline.summary())
        lines += [f"  new: {c.identity}: {c.check} ({c.evidence})" for c in baseline.new]
        lines += [f"  fixed: {c.identity}: {c.check}" for c in baseline.fixed]
    return "\n".join(lines) + "\n"
