"""Debian's checksec as an oracle for the audit's RELRO, canary, NX and PIE verdicts: the
corpus, the comparison, and every disagreement where checksec's rule is known to be wrong.
Shared by the oracle test and bench/audit_vs_checksec.py."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

from buildkit.audit.findings import FileReport, State

# Where checksec's rule is wrong, and why; any other disagreement is a failure.
# Keys: (check, ours, checksec's).
EXPLAINED = {
    ("pie", "yes", "dso"): "a shared object with PT_INTERP is run by the loader as a PIE "
    "executable (libc.so.6, libpsx.so); checksec calls every ET_DYN without DT_DEBUG a DSO",
    ("pie", "dso", "yes"): "a shared object with DT_DEBUG but no PT_INTERP cannot be run; "
    "checksec takes DT_DEBUG alone as proof of a PIE executable",
}
CHECKS = ("relro", "canary", "nx", "pie")


def is_elf(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) == b"\x7fELF"


def system_corpus() -> list[Path]:
    """Shared libraries, executables and CPython's extension modules on this machine."""
    libs = sorted(Path("/usr/lib/x86_64-linux-gnu").glob("lib*.so*"))
    bins = sorted(Path("/usr/bin").glob("*"))
    stdlib = Path(sysconfig.get_path("stdlib", vars={"installed_base": sys.base_prefix}))
    exts = sorted((stdlib / "lib-dynload").glob("*.so"))
    picked: list[Path] = []
    for group, limit in ((libs, 180), (bins, 70), (exts, 80)):
        found = [p for p in group if p.is_file() and not p.is_symlink() and is_elf(p)]
        picked += found[:limit]
    return picked


def checksec_files(files: list[Path]) -> dict[str, dict[str, str]]:
    out = {}
    for path in files:
        proc = subprocess.run(
            ["checksec", f"--file={path}", "--output=json"],
            capture_output=True,
            text=True,
            check=True,
        )
        out.update(json.loads(proc.stdout))
    return out


def verdicts(report: FileReport) -> dict[str, str]:
    """Our verdicts in checksec's words."""

    def state(name: str) -> State:
        check = report.check(name)
        assert check is not None, (name, report)
        return check.state

    relro = report.check("relro")
    assert relro is not None, report
    return {
        "relro": relro.evidence.split(":")[0],
        "canary": "yes" if state("canary") is State.PASS else "no",
        "nx": "yes" if state("nx") is State.PASS else "no",
        "pie": {State.PASS: "yes", State.FAIL: "no", State.NOT_APPLICABLE: "dso"}[state("pie")],
    }


def compare(
    reports: dict[str, FileReport], oracle: dict[str, dict[str, str]]
) -> tuple[int, list[str], list[str]]:
    """(verdicts compared, explained disagreements, unexplained ones) over the files both
    tools reported on."""
    compared, explained, unexplained = 0, [], []
    for path, theirs in sorted(oracle.items()):
        report = reports.get(path)
        if report is None or not isinstance(theirs, dict) or "relro" not in theirs:
            continue
        if report.kind == "relocatable":  # .o files: neither tool judges them
            continue
        for key, value in verdicts(report).items():
            compared += 1
            if value == theirs[key]:
                continue
            why = EXPLAINED.get((key, value, theirs[key]))
            line = f"{path}: {key} ours={value} checksec={theirs[key]}"
            (explained if why else unexplained).append(f"{line}: {why}" if why else line)
    return compared, explained, unexplained
