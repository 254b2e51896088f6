"""The audit's outputs: the reports (JSON, SARIF, Markdown, HTML), written into a folder
each complete or absent (temporary name, then rename), and the terminal table."""

from __future__ import annotations

import json
from pathlib import Path

from ..fsutil import atomic_write_text, output_errors
from . import html, report, sarif
from .findings import ALL_CHECKS
from .policy import GateResult
from .run import AuditResult

FORMATS = ("json", "sarif", "md", "html")


def render(
    fmt: str, result: AuditResult, gate: GateResult | None, *, title: str, root: Path | None
) -> str:
    if fmt == "json":
        # compact: the C encoder is ten times faster than the indenting one on big audits
        return json.dumps(report.document(result, gate), sort_keys=True) + "\n"
    if fmt == "sarif":
        return json.dumps(sarif.document(result, gate, root=root), indent=2) + "\n"
    if fmt == "md":
        return report.markdown(result, gate, title=title)
    if fmt == "html":
        return html.render(result, gate, title=title)
    raise ValueError(fmt)


def write_reports(
    folder: Path,
    stem: str,
    result: AuditResult,
    gate: GateResult | None,
    *,
    formats: tuple[str, ...] = FORMATS,
    root: Path | None = None,
) -> list[Path]:
    """``<stem>.hardening.<fmt>`` for each format; returns the paths written. SARIF
    locations are relative to ``root`` (default: the folder written to)."""
    written = []
    with output_errors(folder):
        folder.mkdir(parents=True, exist_ok=True)
        for fmt in formats:
            dest = folder / f"{stem}.hardening.{fmt}"
            atomic_write_text(dest, render(fmt, result, gate, title=stem, root=root or folder))
            written.append(dest)
    return written


def table(result: AuditResult, gate: GateResult | None) -> str:
    """One line per native file (each check's state), what could not be read or was not
    audited, a summary, and the gate's verdict with its waivers."""
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
        lines.append(report.gate_line(gate))
        lines += [f"  waived: {v.path}: {v.requirement}: {v.waiver}" for v in gate.waived]
        lines += [f"  {v.path}: {v.requirement}: {v.waiver}" for v in gate.failures if v.waiver]
        lines += [f"  unused waiver: {w}" for w in gate.unused_waivers]
    return "\n".join(lines) + "\n"
