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


def _versions_needed(path: Path) -> set[str]:
    """GLIBC_ versions in the file's version requirements, read with LIEF directly."""
    import lief

    binary = lief.ELF.parse(str(path))
    assert binary is not None
    return {
        aux.name
        for req in binary.symbols_version_requirement
        for aux in req.get_auxiliary_symbols()
        if aux.name.startswith("GLIBC_")
    }


def test_glibc_check_names_the_newest_version_needed() -> None:
    needed = _versions_needed(LS)
    newest = max(needed, key=lambda n: tuple(int(p) for p in n[6:].split(".")))
    report = elf.audit(str(LS), str(LS))
    check = report.check("glibc")
    assert check is not None
    assert check.state == State.FAIL, check  # Debian 12's ls needs glibc 2.34
    assert f"needs {newest}" in check.evidence and "GLIBC_2.17" in check.evidence


def test_glibc_check_passes_at_the_baseline() -> None:
    # The same file with every version above 2.17 renamed to one of its era (same
    # length, so the string table stays valid): what the toolchain's binaries look like.
    data = LS.read_bytes()
    for name in _versions_needed(LS):
        version = tuple(int(p) for p in name[6:].split("."))
        if version > (2, 17):
            old = name.encode()
            data = data.replace(old, f"GLIBC_2.{'1' * (len(old) - 8)}".encode()[: len(old)])
    report = elf.audit(data, "ls-old")
    check = report.check("glibc")
    assert check is not None and check.state == State.PASS, check
    assert "GLIBC_2.17" in check.evidence


def test_glibc_check_reads_libstdcxx_versions() -> None:
    lib = Path("/usr/lib/x86_64-linux-gnu/libstdc++.so.6")
    if not lib.is_file():
        pytest.skip("no libstdc++ here")
    # libstdc++ itself needs glibc symbols newer than 2.17 on Debian 12
    check = elf.audit(str(lib), lib.name).check("glibc")
    assert check is not None and check.state == State.FAIL
    assert check.evidence.startswith("needs ")


def test_glibc_check_not_applicable_without_glibc() -> None:
    data = LS.read_bytes()
    report = elf.audit(data.replace(b"libc.so.6", b"libc.musl"), "ls-musl")
    assert report.libc == "musl"
    check = report.check("glibc")
    assert check is not None and check.state == State.NOT_APPLICABLE
