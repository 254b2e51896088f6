"""The audit's reading of a zipapp's boot module (buildkit.audit.zipboot): the boot module
buildkit writes is reported with what its program filter allows; one without a filter,
with a damaged one or one that is not buildkit's is not believed."""

from __future__ import annotations

from buildkit.audit import zipboot
from buildkit.audit.findings import State
from buildkit.backends import launcher
from buildkit.backends.zipapp_seccomp import ProgramFilter


def _boot(program: str) -> bytes:
    return launcher.boot_module(
        "portcheck.cli:main", "3.11", or_newer=False, seccomp=("x86_64", program)
    ).encode()


def test_the_boot_module_buildkit_writes_is_what_the_audit_reads() -> None:
    assert f"{launcher.BOOT_MODULE}.py" == zipboot.NAME
    assert zipboot.is_boot("site-packages/__buildkit_boot__.py") and zipboot.is_boot(zipboot.NAME)
    assert not zipboot.is_boot("evil__buildkit_boot__.py")
    carried = ProgramFilter(bpf="20000000" * 2 * 30, calls=41, execs=False, forks=True)
    row = zipboot.report(_boot(carried.encode()), "app.pex!__buildkit_boot__.py", "app.pex")
    assert row is not None and row.format == "python" and row.arch == "x86_64"
    check = row.check("seccomp")
    assert check is not None and check.state is State.PASS
    assert "41 calls allowed on x86_64 (30 BPF instructions)" in check.evidence
    assert "starts no program, may fork" in check.evidence


def test_a_boot_module_without_a_usable_filter_is_not_believed() -> None:
    empty = zipboot.report(_boot(""), "a!b", "a")  # the first build's: marks only
    assert empty is not None and empty.checks[0].state is State.FAIL
    damaged = _boot(ProgramFilter(bpf="abc", calls=1, execs=False, forks=False).encode())
    bad = zipboot.report(damaged, "a!b", "a")
    assert bad is not None and bad.checks[0].state is State.FAIL
    # built without seccomp = "enforce", or someone else's module of that name: no row
    plain = launcher.boot_module("portcheck.cli:main", "3.11", or_newer=False).encode()
    assert zipboot.report(plain, "a!b", "a") is None
    assert zipboot.report(b"SECCOMP_ARCH = 'sparc'\n", "a!b", "a") is None
