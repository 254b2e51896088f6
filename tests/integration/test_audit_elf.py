"""The LIEF-based ELF checks agree with Debian's checksec on real files of this machine
(gcc builds with and without each flag: test_audit_fixtures.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from buildkit.audit import elf
from tests.checksec_oracle import checksec_files, compare, is_elf, system_corpus

pytestmark = pytest.mark.integration


def our_binaries(dist: Path, into: Path) -> list[Path]:
    """buildkit's onefile binaries and every native file of their payloads, on disk."""
    from buildkit import onefile

    out = []
    for binary in sorted(p for p in dist.iterdir() if p.is_file() and is_elf(p)):
        out.append(binary)
        data = binary.read_bytes()
        payload = onefile.read_payload(data)
        assert isinstance(payload, onefile.Payload), binary
        for entry in payload.entries:
            blob = data[entry.offset : entry.offset + entry.size]
            if blob[:4] == b"\x7fELF":
                dest = into / binary.name / entry.name
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(blob)
                out.append(dest)
    return out


def test_oracle_agrees_with_checksec(nuitka_build: dict[str, Any], tmp_path: Path) -> None:
    """RELRO, canary, NX and PIE agree with Debian's checksec on >= 300 real ELF files:
    system libraries and executables, extension modules, and our own built binaries."""
    files = system_corpus() + our_binaries(nuitka_build["dist"], tmp_path)
    assert len(files) >= 300, len(files)
    reports = {}
    for path in files:
        reports[str(path)] = report = elf.audit(path.read_bytes(), str(path))
        assert report.check("parse") is None, report
    oracle = checksec_files(files)
    compared, explained, unexplained = compare(reports, oracle)
    assert compared == 4 * len(files)
    print(f"{len(files)} files, {len(explained)} explained disagreements:", *explained, sep="\n")
    assert unexplained == []
