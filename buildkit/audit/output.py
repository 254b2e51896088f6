"""Write the audit reports (JSON, SARIF, Markdown, HTML) into a folder, each file
complete or absent (temporary name, then rename)."""

from __future__ import annotations

import json
from pathlib import Path

from ..fsutil import atomic_write_text, output_errors
from . import html, report, sarif
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
