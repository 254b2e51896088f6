"""The seccomp slot a native binary carries, in two stages (onefile_seccomp.c and
program_seccomp.c): compiled here into a small real bootstrap that forks and execs a small
real program, as Nuitka's onefile bootstrap does; recorded by strace, split into the
bootstrap's and the program's calls, armed by buildkit and run. What the program did still
works; a fork, an exec or a call it never made fails with EPERM, though the bootstrap's
filter allows them; threads still work (clone3 is answered with ENOSYS, glibc falls back
to clone). The shipped OCI profile, loaded by libseccomp as runc loads it, lets the armed
binary install its filters; a profile without them gets a hint that fits. The audit
reports the filters (and their absence). On aarch64 the filter is checked by running the
compiled BPF program in a small interpreter, since QEMU's user mode cannot install
filters."""

from __future__ import annotations

import json
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

BACKENDS = Path(__file__).resolve().parents[2] / "buildkit" / "backends"
BOOTSTRAP = r"""
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
/* as Nuitka's onefile bootstrap: fork, exec the program (argv[1]) in the child, wait */
int main(int argc, char **argv) {
    if (argc < 2) return 2;
    pid_t pid = fork();
    if (pid < 0) { perror("bootstrap fork"); return 2; }
    if (pid == 0) { execv(argv[1], argv + 1); perror("bootstrap exec"); _exit(2); }
    int status;
    if (waitpid(pid, &status, 0) < 0) return 2;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
"""
PROGRAM = r"""
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
static void *work(void *arg) { return arg; }
int main(int argc, char **argv) {
    printf("hello\n");
    fflush(stdout);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "thread") == 0) {
            pthread_t thread;
            int rc = pthread_create(&thread, NULL, work, NULL);
            if (rc != 0) { fprintf(stderr, "thread: %s\n", strerror(rc)); return 5; }
            pthread_join(thread, NULL);
            printf("thread\n");
        } else if (strcmp(argv[i], "fork") == 0) {
            pid_t pid = fork();
            if (pid < 0) { perror("fork"); return 3; }
            if (pid == 0) _exit(0);
            waitpid(pid, NULL, 0);
            printf("forked\n");
        } else if (strcmp(argv[i], "exec") == 0) {
            fflush(stdout);
            execl("/bin/echo", "echo", "exec'd", (char *)NULL);
            perror("exec");
            return 4;
        }
    }
    return 0;
}
"""


def _source(folder: Path, name: str, main: str, stage: str) -> Path:
    """``main`` and a seccomp stage, as the Nuitka plugin puts them together."""
    text = (BACKENDS / "seccomp_install.h").read_text() + (BACKENDS / stage).read_text()
    (folder / f"{name}-main.c").write_text(main)
    (folder / f"{name}-stage.c").write_text('#define BUILDKIT_ARTIFACT "probe"\n' + text)
    return folder / f"{name}-main.c"


def _build(folder: Path, cc: list[str], suffix: str = "") -> tuple[Path, Path]:
    """The bootstrap and the program, compiled with ``cc``."""
    made = []
    for name, main, stage in (("bootstrap", BOOTSTRAP, "onefile_seccomp.c"),
                              ("program", PROGRAM, "program_seccomp.c")):  # fmt: skip
        source = _source(folder, name, main, stage)
        out = folder / f"{name}{suffix}"
        subprocess.run([*cc, "-O2", "-fPIE", "-pie", "-pthread", "-o", out, source,
                        folder / f"{name}-stage.c"], check=True)  # fmt: skip
        made.append(out)
    return made[0], made[1]


def _record(tmp_path: Path, bootstrap: Path, program: Path, *args: str) -> record.Recording:
    logs = tmp_path / f"logs-{'-'.join(args) or 'plain'}"
    logs.mkdir()
    strace = shutil.which("strace")
    assert strace, "ci/setup installs strace"
    subprocess.run([strace, "-f", "-qq", "-o", logs / "s", "--", bootstrap, program, *args],
                   check=True, capture_output=True)  # fmt: skip
    return record.recorded("x86_64", "strace", logs.iterdir(), split="exec")


def _profiles(made: record.Recording) -> tuple[seccomp.Profile, seccomp.Profile]:
    first = seccomp.make("x86_64", {"probe": made.calls}, seccomp.INSTALL)
    second = seccomp.make_program("x86_64", made.program, execs=made.execs, forks=made.forks)
    return first, second


def _run(*argv: str | Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, check=False,
                          env=env or None)  # fmt: skip


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return _build(tmp_path_factory.mktemp("probe"), ["gcc"])


def test_the_program_stage_refuses_fork_and_exec_its_checks_never_made(
    tmp_path: Path, probe: tuple[Path, Path]
) -> None:
    bootstrap, program = probe
    # the build's binary: an empty slot, no filter, everything works
    plain = _run(bootstrap, program, "fork", "thread")
    assert plain.returncode == 0 and plain.stdout.split() == ["hello", "forked", "thread"]
    made = _record(tmp_path, bootstrap, program, "thread")
    # the bootstrap forked and exec'd; the program made a thread only
    assert {"execve", "clone"} <= made.calls or {"execve", "clone3"} <= made.calls
    assert not made.execs and not made.forks
    assert "execve" not in made.program and "wait4" not in made.program
    first, second = _profiles(made)
    assert "execve" in first.calls and {"prctl", "seccomp"} <= set(first.calls)
    assert "execve" not in second.calls and second.threads_only
    armed = tmp_path / "armed"
    written = slot.arm(bootstrap, armed, first, second)
    assert written.armed and written.program is not None
    assert not written.program.execs and not written.program.forks
    assert armed.stat().st_size == bootstrap.stat().st_size
    ok = _run(armed, program, "thread")
    assert ok.returncode == 0 and ok.stdout.split() == ["hello", "thread"], ok.stderr
    forked = _run(armed, program, "fork")
    assert forked.returncode == 3, (forked.stdout, forked.stderr)
    assert "fork: Operation not permitted" in forked.stderr
    execd = _run(armed, program, "exec")
    assert execd.returncode == 4, (execd.stdout, execd.stderr)
    assert "exec: Operation not permitted" in execd.stderr
    # the variable only matters when the kernel refuses a filter: here both are installed
    still = _run(armed, program, "fork", BUILDKIT_SECCOMP_UNAVAILABLE="run")
    assert still.returncode == 3
    with pytest.raises(Exception, match="armed already"):
        slot.arm(armed, tmp_path / "twice", first, second)


def test_checks_that_fork_and_exec_make_a_program_filter_that_allows_them(
    tmp_path: Path, probe: tuple[Path, Path]
) -> None:
    bootstrap, program = probe
    made = _record(tmp_path, bootstrap, program, "fork", "thread")
    assert made.forks and not made.execs
    first, second = _profiles(made)
    armed = tmp_path / "armed"
    slot.arm(bootstrap, armed, first, second)
    forked = _run(armed, program, "fork", "thread")
    assert forked.returncode == 0 and forked.stdout.split() == ["hello", "forked", "thread"]
    assert _run(armed, program, "exec").returncode == 4  # still no exec
    made = _record(tmp_path, bootstrap, program, "exec")
    assert made.execs and not made.forks
    first, second = _profiles(made)
    armed2 = tmp_path / "armed2"
    slot.arm(bootstrap, armed2, first, second)
    execd = _run(armed2, program, "exec")
    assert execd.returncode == 0 and execd.stdout.split() == ["hello", "exec'd"], execd.stderr
    assert _run(armed2, program, "fork").returncode == 3  # and still no fork
    # the recipe can say so instead of the checks
    allowed = seccomp.make_program("x86_64", made.program, ("fork",), execs=False, forks=False)
    assert not allowed.threads_only and "execve" not in allowed.calls


def test_the_program_refuses_to_start_without_its_bootstrap(probe: tuple[Path, Path]) -> None:
    _, program = probe
    alone = _run(program)
    assert alone.returncode == 126
    assert "not started by its onefile binary" in alone.stderr
    bad = _run(program, BUILDKIT_SECCOMP_PROGRAM="0011zz")
    assert bad.returncode == 126 and "filter is damaged" in bad.stderr
    # the unarmed bootstrap's word: the program runs as recorded
    assert _run(program, BUILDKIT_SECCOMP_PROGRAM="none").returncode == 0


def test_the_shipped_profile_lets_the_armed_binary_start_under_libseccomp(
    tmp_path: Path, probe: tuple[Path, Path]
) -> None:
    bootstrap, program = probe
    made = _record(tmp_path, bootstrap, program, "thread")
    first, second = _profiles(made)
    armed = tmp_path / "armed"
    slot.arm(bootstrap, armed, first, second)
    shipped = tmp_path / "shipped.json"
    shipped.write_text(first.oci_text())
    consumer = [sys.executable, "-m", "tests.oci_seccomp"]
    root = Path(__file__).resolve().parents[2]
    ran = subprocess.run([*consumer, shipped, "--", armed, program, "thread"],
                         capture_output=True, text=True, check=False, cwd=root)  # fmt: skip
    assert ran.returncode == 0 and ran.stdout.split() == ["hello", "thread"], ran.stderr
    # a profile recorded from the unarmed binary (without prctl and seccomp): the binary
    # cannot install its filter and says which way out applies
    bare = seccomp.make("x86_64", {"probe": made.calls})
    recorded = tmp_path / "recorded.json"
    recorded.write_text(bare.oci_text())
    refused = subprocess.run([*consumer, recorded, "--", armed, program],
                             capture_output=True, text=True, check=False, cwd=root)  # fmt: skip
    assert refused.returncode == 126, refused.stderr
    assert "cannot be installed (Operation not permitted)" in refused.stderr
    assert "the profile its release ships" in refused.stderr
    assert "BUILDKIT_SECCOMP_UNAVAILABLE" not in refused.stderr
    assert json.loads(shipped.read_text())["defaultAction"] == "SCMP_ACT_ERRNO"


def test_the_audit_reports_the_filter_its_absence_and_an_empty_slot(
    tmp_path: Path, probe: tuple[Path, Path]
) -> None:
    bootstrap, program = probe
    armed = tmp_path / "armed"
    first, second = _profiles(_record(tmp_path, bootstrap, program, "thread"))
    slot.arm(bootstrap, armed, first, second)
    check = elf.audit(str(armed), "armed").check("seccomp")
    assert check is not None and check.state == "pass"
    assert f"enforced: {len(first.calls)} calls allowed on x86_64" in check.evidence
    assert (
        f"the program's own filter: {len(second.calls)} calls" in check.evidence
        and "starts no program, threads only" in check.evidence
    ), check.evidence
    empty = elf.audit(str(bootstrap), "probe").check("seccomp")
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
    run = _run(damaged, program)
    assert run.returncode == 126 and "seccomp filter is damaged" in run.stderr
    # a slot of one stage (made before the program's own filter): the gate cannot pass it
    older = bytearray(armed.read_bytes())
    older[found.offset : found.offset + slot.HEADER_V1.size] = slot.HEADER_V1.pack(
        slot.MAGIC, 1, 1, libseccomp.TOKENS["x86_64"], 40, 48, 0
    )
    (tmp_path / "older").write_bytes(bytes(older))
    one = elf.audit(str(tmp_path / "older"), "older").check("seccomp")
    assert one is not None and one.state == "fail" and "one stage only" in one.evidence


def test_under_qemu_the_binary_refuses_to_run_unconfined_unless_told(tmp_path: Path) -> None:
    if not shutil.which("qemu-aarch64-static"):
        pytest.skip("needs qemu-user-static (ci/setup installs it)")
    if not Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists():
        pytest.skip("needs binfmt_misc's qemu-aarch64 (the bootstrap execs the program)")
    zig = [sys.executable, "-m", "ziglang", "cc", "-target", "aarch64-linux-musl"]
    bootstrap, program = _build(tmp_path, zig, "-arm")
    calls = ["write", "ioctl", "writev", "clone", "execve", "wait4"]
    first = seccomp.make("aarch64", {"probe": calls}, seccomp.INSTALL)
    second = seccomp.make_program("aarch64", ["write"], execs=False, forks=False)
    armed = tmp_path / "armed-arm"
    slot.arm(bootstrap, armed, first, second)
    refused = _run("qemu-aarch64-static", armed, program)
    assert refused.returncode == 126
    assert "its seccomp filter cannot be installed (Function not implemented)" in refused.stderr
    assert "BUILDKIT_SECCOMP_UNAVAILABLE=run" in refused.stderr
    told = _run("qemu-aarch64-static", armed, program, BUILDKIT_SECCOMP_UNAVAILABLE="run")
    assert told.returncode == 0 and told.stdout == "hello\n", told.stderr
    # both stages say so: the bootstrap's filter and the program's
    assert "cannot install its seccomp filter" in told.stderr
    assert "cannot install its program's seccomp filter" in told.stderr


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


def test_the_program_filter_allows_threads_only_and_answers_clone3_with_enosys() -> None:
    profile = seccomp.make_program("aarch64", ["clone3", "read"], execs=False, forks=False)
    assert "clone" in profile.calls and "clone3" not in profile.calls
    program = libseccomp.compile_bpf("aarch64", profile.calls,
                                     default_action=libseccomp.act_errno(),
                                     threads_only=True, clone3_enosys=True)  # fmt: skip
    arm = libseccomp.TOKENS["aarch64"]
    clone3 = libseccomp.number("aarch64", "clone3")
    execve = libseccomp.number("aarch64", "execve")
    assert clone3 is not None and execve is not None
    assert _run_bpf(program, arm, clone3) == libseccomp.act_errno(38)  # ENOSYS
    assert _run_bpf(program, arm, execve) == libseccomp.act_errno()
