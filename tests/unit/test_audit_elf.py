"""ELF checks on files this machine already has (no tool is run)."""

from __future__ import annotations

import sys
import sysconfig
from pathlib import Path

import pytest

from buildkit.audit import elf
from buildkit.audit.findings import State

LS = Path("/usr/bin/ls")


def test_unparseable_is_a_finding_never_a_pass() -> None:
    for data in (b"", b"not an ELF file", LS.read_bytes()[:100]):
        report = elf.audit(data, "x")
        assert report.format in ("elf", "unparseable")
        assert [(c.name, c.state) for c in report.checks] == [("parse", State.FAIL)]


def test_executable_classified_and_evidence_given() -> None:
    report = elf.audit(LS.read_bytes(), str(LS))
    assert report.kind in ("pie-executable", "executable")
    assert report.libc == "glibc"
    for check in report.checks:
        assert check.evidence


def test_python_extension_and_pie_not_applicable() -> None:
    lib = (
        Path(sys.base_prefix)
        / "lib"
        / f"python{sysconfig.get_config_var('VERSION')}"
        / "lib-dynload"
    )
    ext = next(lib.glob("_json*.so"), None)
    if ext is None:
        pytest.skip("this Python has no shared _json extension")
    report = elf.audit(ext.read_bytes(), ext.name)
    assert report.kind == "python-extension"
    assert report.check("pie").state == State.NOT_APPLICABLE
