"""The seccomp slot a native binary carries (onefile_seccomp.c): compiled into a small
real program here, armed by buildkit with the profile strace recorded from it, and run:
what the program did still works, what it never did fails with EPERM. The audit reports
the filter (and its absence). On aarch64 the filter is checked by running the compiled
BPF program in a small interpreter, since QEMU's user mode cannot install filters."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from pathlib import Path

import lief
import pytest

from buildkit import seccomp
from buildkit.audit import elf
from buildkit.seccomp import libseccomp, record, slot

pytestmark = pytest.mark.integration

SOURCE = Path(__file__).resolve().parents[2] / "buildkit" / "backends" / "onefile_seccomp.c"
MAIN = r"""
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
    printf("hello\n");
    fflush(stdout);
    if (argc > 1) {
        pid_t pid = fork();
        if (pid < 0) { perror("fork"); return 3; }
        if (pid == 0) _exit(0);
        waitpid(pid, NULL, 0);
        printf("forked\n");
    }
    return 0;
}
"""


def _build(folder: Path, cc: list[str], name: str) -> Path:
    (folder / "main.c").write_text(MAIN)
    out = folder / name
    subprocess.run(
        [*cc, "-O2", "-fPIE", "-pie", '-DBUILDKIT_ARTIFACT="probe"', "-o", out,
         folder / "main.c", SOURCE],
        check=True,
    )  # fmt: skip
    return out


def _profile(tmp_path: Path, program: Path) -> seccomp.Profile:
    logs = tmp_path / "logs"
    logs.mkdir()
    strace = shutil.which("strace")
    assert strace, "ci/setup installs strace"
    subprocess.run([strace, "-f", "-qq", "-o", logs / "s", "--", program], check=True,
                   capture_output=True)  # fmt: skip
    return seccomp.make("x86_64", {program.name: record.from_strace("x86_64", logs.iterdir())})


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("probe"), ["gcc"], "probe")


def test_an_armed_binary_allows_what_it_did_and_refuses_the_rest(
    tmp_path: Path, probe: Path
) -> None:
    # the build's binary: an empty slot, no filter, fork works
    plain = subprocess.run([probe, "fork"], capture_output=True, text=True, check=False)
    assert plain.returncode == 0 and plain.stdout.split() == ["hello", "forked"]
    profile = _profile(tmp_path, probe)  # recorded without "fork": it never forked
    assert "clone" not in profile.calls and "fork" not in profile.calls
    armed = tmp_path / "armed"
    written = slot.arm(probe, armed, profile)
    assert written.armed and written.calls == len(profile.calls)
    assert armed.stat().st_size == probe.stat().st_size
    ok = subprocess.run([armed], capture_output=True, text=True, check=False)
    assert ok.returncode == 0 and ok.stdout == "hello\n", ok.stderr
    refused = subprocess.run([armed, "fork"], capture_output=True, text=True, check=False)
    assert refused.returncode == 3
    assert "fork: Operation not permitted" in refused.stderr
    # the variable only matters when the kernel refuses the filter: here it is installed
    still = subprocess.run([armed, "fork"], capture_output=True, text=True, check=False,
                           env={"BUILDKIT_SECCOMP_UNAVAILABLE": "run"})  # fmt: skip
    assert still.returncode == 3
    with pytest.raises(Exception, match="armed already"):
        slot.arm(armed, tmp_path / "twice", profile)


def test_the_audit_reports_the_filter_its_absence_and_an_empty_slot(
    tmp_path: Path, probe: Path
) -> None:
    armed = tmp_path / "armed"
    profile = _profile(tmp_path, probe)
    slot.arm(probe, armed, profile)
    check = elf.audit(str(armed), "armed").check("seccomp")
    assert check is not None and check.state == "pass"
    assert f"enforced: {len(profile.calls)} calls allowed on x86_64" in check.evidence
    empty = elf.audit(str(probe), "probe").check("seccomp")
    assert empty is not None and empty.state == "fail" and "empty seccomp slot" in empty.evidence
    none = elf.audit("/usr/bin/true", "true").check("seccomp")
    assert none is not None and none.state == "fail" and "no seccomp filter" in none.evidence
    lib = next(Path("/usr/lib/x86_64-linux-gnu").glob("libz.so.1*"))
    na = elf.audit(str(lib), lib.name).check("seccomp")
    assert na is not None and na.state == "n/a"
    # a damaged slot is reported, not trusted
    data = bytearray(armed.read_bytes())
    found = slot.read(bytes(data), lief.ELF.parse(str(armed)))
    assert found is not None
    struct.pack_into("<I", data, found.offset + 28, 99999)  # the instruction count
    damaged = tmp_path / "damaged"
    damaged.write_bytes(bytes(data))
    bad = elf.audit(str(damaged), "damaged").check("seccomp")
    assert bad is not None and bad.state == "fail" and "damaged" in bad.evidence
    damaged.chmod(0o755)
    run = subprocess.run([damaged], capture_output=True, text=True, check=False)
    assert run.returncode == 126 and "seccomp filter is damaged" in run.stderr


def test_under_qemu_the_binary_refuses_to_run_unconfined_unless_told(tmp_path: Path) -> None:
    if not shutil.which("qemu-aarch64-static"):
        pytest.skip("needs qemu-user-static (ci/setup installs it)")
    zig = [sys.executable, "-m", "ziglang", "cc", "-target", "aarch64-linux-musl"]
    program = _build(tmp_path, zig, "probe-arm")
    profile = seccomp.make("aarch64", {"probe": ["write", "ioctl", "writev"]})
    armed = tmp_path / "armed-arm"
    slot.arm(program, armed, profile)
    refused = subprocess.run(["qemu-aarch64-static", armed], capture_output=True, text=True,
                             check=False)  # fmt: skip
    assert refused.returncode == 126
    assert "seccomp filter cannot be installed (Function not implemented)" in refused.stderr
    told = subprocess.run(["qemu-aarch64-static", armed], capture_output=True, text=True,
                          check=False, env={"BUILDKIT_SECCOMP_UNAVAILABLE": "run"})  # fmt: skip
    assert told.returncode == 0 and told.stdout == "hello\n"
    assert "running without it" in told.stderr


def _run_bpf(program: bytes, arch: int, nr: int) -> int:
    """Classic BPF as the kernel runs a seccomp filter, for the instructions libseccomp
    emits (loads of seccomp_data words, jumps on constants, returns)."""
    data = struct.pack("<iI", nr, arch) + bytes(56)  # nr, arch, ip, args
    insns = [struct.unpack_from("<HBBI", program, i) for i in range(0, len(program), 8)]
    acc, pc = 0, 0
    while True:
        code, jt, jf, k = insns[pc]
        if code == 0x20:  # ld [k]
            acc = struct.unpack_from("<I", data, k)[0]
        elif code == 0x15:  # jeq #k
            pc += jt if acc == k else jf
        elif code == 0x25:  # jgt #k
            pc += jt if acc > k else jf
        elif code == 0x35:  # jge #k
            pc += jt if acc >= k else jf
        elif code == 0x45:  # jset #k
            pc += jt if acc & k else jf
        elif code == 0x05:  # ja
            pc += k
        elif code == 0x06:  # ret #k
            return k
        else:
            raise AssertionError(f"BPF opcode {code:#x} not simulated")
        pc += 1


def test_the_aarch64_filter_allows_the_recorded_calls_by_their_aarch64_numbers() -> None:
    calls = ["openat", "read", "write", "mmap", "exit_group"]
    profile = seccomp.make("aarch64", {"p": calls})
    program = libseccomp.compile_bpf(
        "aarch64", profile.calls, default_action=libseccomp.act_errno()
    )
    arm, x86 = libseccomp.TOKENS["aarch64"], libseccomp.TOKENS["x86_64"]
    allow, deny = libseccomp.SCMP_ACT_ALLOW, libseccomp.act_errno()
    for call in profile.calls:
        nr = libseccomp.number("aarch64", call)
        assert nr is not None and _run_bpf(program, arm, nr) == allow, call
    for call in ("clone", "ptrace", "execveat", "socket"):
        nr = libseccomp.number("aarch64", call)
        assert nr is not None and _run_bpf(program, arm, nr) == deny, call
    # openat is 56 on aarch64 and 257 on x86_64: the filter knows which is which
    assert _run_bpf(program, arm, 257) == deny
    assert _run_bpf(program, x86, 56) == deny
