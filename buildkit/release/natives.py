"""Every native file inside an artifact and where it came from, as the manifest keeps it
(``natives``: path inside the artifact, sha256, component, origin, source), so the SBOM
can attribute each one to a component, and a release assembled on another machine keeps
what the build host found out (which distribution package a system library came from)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from ..audit.findings import Component, FileReport
from ..audit.run import AuditResult
from .manifest import ArtifactRecord


def rows(files: Iterable[FileReport], artifact: str) -> list[dict[str, str]]:
    """The manifest rows of ``artifact``'s native files (one per file: a fat Mach-O
    file's slices share it), sorted by path."""
    out: dict[str, dict[str, str]] = {}
    for f in files:
        if f.artifact != artifact:
            continue
        out.setdefault(
            f.member,
            {
                "path": f.member,
                "sha256": f.sha256,
                "component": f.component.value,
                "origin": f.origin,
                "source": f.source,
            },
        )
    return [out[k] for k in sorted(out)]


def applied(result: AuditResult, records: Mapping[str, ArtifactRecord]) -> AuditResult:
    """``result`` with what the build host recorded about system libraries (their
    package, as source and origin) for the artifacts whose records hold natives."""
    known = {
        (name, row["path"]): row
        for name, record in records.items()
        for row in record.natives or ()
        if row.get("component") == Component.SYSTEM.value and row.get("source")
    }
    if not known:
        return result

    def placed(f: FileReport) -> FileReport:
        row = known.get((f.artifact, f.member))
        if row is None or f.component is not Component.SYSTEM or f.source:
            return f
        return replace(f, source=row["source"], origin=row["origin"])

    return replace(result, files=tuple(placed(f) for f in result.files))
