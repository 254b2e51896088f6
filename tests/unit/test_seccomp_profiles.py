"""The release's seccomp profiles from manifest records: the union per target, the OCI and
systemd forms, and no libseccomp needed to make them again (verify, assemble)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from buildkit import seccomp
from buildkit.errors import ToolError
from buildkit.release import profiles
from buildkit.release.manifest import ArtifactRecord
from buildkit.seccomp import libseccomp


def entry(name: str, target: str, arch: str, allowed: list[str]) -> ArtifactRecord:
    checks: dict[str, Any] = {
        "status": "passed",
        "runs": [],
        "syscalls": {"arch": arch, "recorder": "strace", "calls": allowed, "allowed": allowed},
    }
    return ArtifactRecord(
        name=name, recipe="probe", version="1", target=target, format="pex", python="3.11",
        sha256="0" * 64, size=1, lock="l", lock_digest="sha256:0", inputs={}, checks=checks,
    )  # fmt: skip


def test_a_targets_profile_is_the_union_of_its_artifacts_and_needs_no_libseccomp(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def missing() -> None:
        raise ToolError("libseccomp is not installed")

    monkeypatch.setattr(libseccomp, "_lib", missing)
    entries = {
        "a.pex": entry("a.pex", "linux-amd64", "x86_64", ["read", "write"]),
        "a.bin": entry("a.bin", "linux-amd64", "x86_64", ["openat", "write"]),
        "b.bin": entry("b.bin", "linux-arm64", "aarch64", ["read"]),
        "c.pex": ArtifactRecord(
            **{
                **entry("c.pex", "darwin-arm64", "", []).to_dict(),
                "checks": {"status": "not-run", "runs": []},
            }
        ),
    }
    texts = profiles.render(entries)
    assert sorted(texts) == [
        "probe-1-linux-amd64.seccomp.conf",
        "probe-1-linux-amd64.seccomp.json",
        "probe-1-linux-arm64.seccomp.conf",
        "probe-1-linux-arm64.seccomp.json",
    ]
    amd = json.loads(texts["probe-1-linux-amd64.seccomp.json"])
    assert amd == {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["openat", "read", "write"], "action": "SCMP_ACT_ALLOW"}],
    }
    arm = json.loads(texts["probe-1-linux-arm64.seccomp.json"])
    assert arm["architectures"] == ["SCMP_ARCH_AARCH64"]
    conf = texts["probe-1-linux-amd64.seccomp.conf"]
    assert "SystemCallFilter=openat read write\n" in conf
    assert "NoNewPrivileges=yes" in conf and "SystemCallErrorNumber=EPERM" in conf
    # the same records, in another order: the same bytes
    assert profiles.render(dict(reversed(entries.items()))) == texts


def test_a_profile_keeps_the_calls_no_recorder_sees_and_only_this_arch_s_additions() -> None:
    profile = seccomp.make("aarch64", {"x": ["read"]}, ["open", "ptrace"])
    assert set(seccomp.ALWAYS) <= set(profile.calls)
    assert "ptrace" in profile.calls
    assert "open" not in profile.calls  # aarch64 has openat only
    assert profile.recorded == ("read",)
    long = seccomp.make("x86_64", {"x": [n for n in ("read", "write", "openat") * 1]})
    lines = long.systemd_text("t").splitlines()
    assert all(len(line) <= 100 for line in lines)


def test_checks_that_only_ask_about_the_program_are_thin() -> None:
    assert seccomp.thin([["--help"], ["--version"]])
    assert not seccomp.thin([["--help"], ["127.0.0.1:80"]])


def test_socket_is_limited_to_the_families_the_checks_used_in_every_form(
    tmp_path: Any,
) -> None:
    from buildkit.seccomp import record

    log = tmp_path / "s.1"
    log.write_bytes(
        b"7 socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_TCP) = 3\n"
        b"7 socket(PF_UNIX,SOCK_STREAM,0) = 4\n"  # QEMU's spelling
        b"7 socketpair(1,524289,0,0x40) = 0\n"  # QEMU numbers the ones it has no name for
        b"7 socket(AF_INET6, SOCK_DGRAM, 0 <unfinished ...>\n"
    )
    families = record.families([log])
    assert families == {"AF_UNIX", "AF_INET", "AF_INET6"}
    profile = seccomp.make("x86_64", {"x": ["socket", "connect"]}, ["AF_NETLINK"],
                           families=families)  # fmt: skip
    assert profile.families == ("AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK")
    assert "AF_NETLINK" not in profile.calls  # a family is not a call
    doc = profile.to_oci()
    allowed, *limited = doc["syscalls"]
    assert "socket" not in allowed["names"] and "connect" in allowed["names"]
    assert [r["args"][0]["valueTwo"] for r in limited] == [1, 2, 10, 16]
    assert all(r["names"] == ["socket"] and r["args"][0]["op"] == "SCMP_CMP_MASKED_EQ"
               for r in limited)  # fmt: skip
    assert "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK\n" in (
        profile.systemd_text("t")
    )
    # a family without a name here: socket() is not limited (no guess)
    log.write_bytes(b"7 socket(99,1,0) = -1 EAFNOSUPPORT\n")
    assert record.families([log]) is None
    loose = seccomp.make("x86_64", {"x": ["socket"]}, families=None)
    assert loose.families is None and not loose.limits_socket()
    assert len(loose.to_oci()["syscalls"]) == 1
    assert "RestrictAddressFamilies" not in loose.systemd_text("t")
    # socket allowed by hand, no family known: not limited either
    by_hand = seccomp.make("x86_64", {"x": ["read"]}, ["socket"], families=frozenset())
    assert by_hand.families is None
    # no socket at all: nothing to limit, nothing said
    none = seccomp.make("x86_64", {"x": ["read"]}, families=frozenset())
    assert not none.limits_socket() and "RestrictAddressFamilies" not in none.systemd_text("t")


def test_a_targets_families_are_the_union_unless_one_artifact_is_unlimited() -> None:
    def with_families(name: str, allowed: list[str] | None) -> ArtifactRecord:
        record = entry(name, "linux-amd64", "x86_64", ["socket", "read"])
        assert record.checks is not None
        record.checks["syscalls"]["allowed_families"] = allowed
        return record

    both = profiles.render(
        {"a": with_families("a", ["AF_INET"]), "b": with_families("b", ["AF_UNIX"])}
    )
    doc = json.loads(both["probe-1-linux-amd64.seccomp.json"])
    assert [r["args"][0]["valueTwo"] for r in doc["syscalls"][1:]] == [1, 2]
    # a record without families (an older release, or an unnamed family): any family
    loose = profiles.render({"a": with_families("a", ["AF_INET"]), "b": with_families("b", None)})
    assert len(json.loads(loose["probe-1-linux-amd64.seccomp.json"])["syscalls"]) == 1


def test_the_slot_header_keeps_the_families_and_the_program_stage() -> None:
    from buildkit.seccomp import slot

    arm = libseccomp.TOKENS["aarch64"]
    # version 1 (one filter, releases made before the program stage): still read
    head = slot.HEADER_V1.pack(slot.MAGIC, 1, 1, arm, 40, 48, (1 << 1) | (1 << 2))
    found = slot.parse(head, 0, slot.SIZE_V1)
    assert found.families == ("AF_UNIX", "AF_INET") and found.calls == 48
    assert found.version == 1 and found.program is None
    unlimited = slot.parse(head[:36] + bytes(12), 0, slot.SIZE_V1)
    assert unlimited.families is None
    head2 = slot.HEADER.pack(slot.MAGIC, 2, 1, arm, 40, 48, 1 << 2, 30, 20, slot.FORKS)
    two = slot.parse(head2, 0, slot.SIZE)
    assert two.program == slot.Stage(instructions=30, calls=20, execs=False, forks=True)
    assert two.families == ("AF_INET",)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ((2, 1, 0xC00000B7, 40, 48, 0, 0, 0, 0), "damaged program filter"),
        ((2, 1, 0xC00000B7, 40, 48, 0, 9999, 0, 0), "damaged program filter"),
        ((2, 1, 0xC00000B7, 0, 48, 0, 3, 0, 0), "damaged filter"),
        ((3, 1, 0xC00000B7, 40, 48, 0, 3, 0, 0), "unknown version"),
    ],
)
def test_a_damaged_slot_is_refused(fields: tuple[int, ...], message: str) -> None:
    from buildkit.errors import CheckFailed
    from buildkit.seccomp import slot

    with pytest.raises(CheckFailed, match=message):
        slot.parse(slot.HEADER.pack(slot.MAGIC, *fields), 0, slot.SIZE)
    with pytest.raises(CheckFailed, match="not 65600"):
        slot.parse(slot.HEADER.pack(slot.MAGIC, 2, 0, 0, 0, 0, 0, 0, 0, 0), 0, slot.SIZE_V1)


# strace -f of a onefile bootstrap (1000) that starts a thread, forks a child (1001)
# which execs the program; the program makes a thread (1002, clone3) and execs nothing
STRACE = b"""\
1000 execve("/tmp/app", ["app"], 0x7ffd /* 9 vars */) = 0
1000 openat(AT_FDCWD, "/tmp/app", O_RDONLY) = 3
1000 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD <unfinished ...>
1001 set_robust_list(0x7f, 24) = 0
1000 <... clone resumed>, child_tidptr=0x7f) = 1001
1001 execve("/home/u/.cache/run/app", ["app"], 0x55 /* 10 vars */ <unfinished ...>
1000 wait4(1001,  <unfinished ...>
1001 <... execve resumed>) = 0
1001 getrandom("x", 8, GRND_NONBLOCK) = 8
1001 clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM, child_tid=0x7f, parent_tid=0x7f, exit_signal=0, stack=0x7f, stack_size=0x7fff00, tls=0x7f} => {parent_tid=[1002]}, 88) = 1002
1002 socket(AF_INET, SOCK_STREAM, IPPROTO_TCP) = 3
1002 exit(0) = ?
1001 exit_group(1) = ?
1000 <... wait4 resumed>[{WIFEXITED(s) && WEXITSTATUS(s) == 1}], 0, NULL) = 1001
1000 unlink("/home/u/.cache/run/app") = 0
1000 exit_group(1) = ?
"""


def test_a_strace_recording_splits_the_bootstrap_from_the_program(tmp_path: Path) -> None:
    from buildkit.seccomp import record

    (tmp_path / "s").write_bytes(STRACE)
    made = record.recorded("x86_64", "strace", [tmp_path / "s"], split="exec")
    assert {"clone", "execve", "wait4", "unlink", "openat"} <= made.calls
    assert made.program == {"getrandom", "clone3", "socket", "exit", "exit_group"}
    assert not made.execs and not made.forks
    assert made.families == {"AF_INET"}
    # the program forks and execs: its child's exec is the program's, not the bootstrap's
    more = STRACE.replace(
        b"1002 exit(0) = ?\n",
        b'1002 exit(0) = ?\n1001 vfork() = 1003\n1003 execve("/bin/sh", ["sh"], 0x1) = 0\n'
        b'1003 read(0, "", 1) = 0\n',
    )
    (tmp_path / "s").write_bytes(more)
    made = record.recorded("x86_64", "strace", [tmp_path / "s"], split="exec")
    assert made.execs and made.forks and {"vfork", "execve", "read"} <= made.program
    # not staged (a zipapp): the whole tree is the program
    flat = record.recorded("x86_64", "strace", [tmp_path / "s"])
    assert flat.program == flat.calls and flat.execs and flat.forks


def test_a_qemu_recording_splits_by_file(tmp_path: Path) -> None:
    from buildkit.seccomp import record

    (tmp_path / "q0.500").write_bytes(
        b'500 openat(AT_FDCWD,"/tmp/app",O_RDONLY) = 3\n'
        b"500 clone(CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|0x11,child_stack=0x0) = 501\n"
        b'501 execve("/home/u/.cache/run/app",{"app",NULL}) = 0\n'
        b"500 wait4(501,0,0,0) = 501\n"
    )
    (tmp_path / "q0.501").write_bytes(
        b"501 getrandom(0x55,8,1) = 8\n"
        b"501 clone(CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM,"
        b"child_stack=0x7f) = 502\n"
        b"502 socket(PF_INET,SOCK_STREAM,IPPROTO_TCP) = 3\n"
    )
    files = list(tmp_path.iterdir())
    made = record.recorded("aarch64", "qemu", files, split="exec")
    assert {"openat", "clone", "execve", "wait4", "getrandom", "socket"} <= made.calls
    assert made.program == {"getrandom", "clone", "socket"}
    assert not made.execs and not made.forks and made.families == {"AF_INET"}


def test_the_program_filter_follows_what_the_program_did_and_the_recipe() -> None:
    made = ["read", "clone3", "socket", "connect"]
    quiet = seccomp.make_program("x86_64", made, execs=False, forks=False)
    assert "execve" not in quiet.calls and "clone3" not in quiet.calls
    assert "clone" in quiet.calls and quiet.threads_only and not quiet.may_exec()
    assert "fork" not in quiet.calls and "vfork" not in quiet.calls
    both = seccomp.make_program("x86_64", [*made, "vfork"], execs=True, forks=True)
    assert both.may_exec() and not both.threads_only and "vfork" in both.calls
    said = seccomp.make_program("x86_64", made, ("execve", "fork"), execs=False, forks=False)
    assert said.may_exec() and not said.threads_only and "fork" in said.calls
    # aarch64 has no fork: "fork" in the recipe still means processes
    arm = seccomp.make_program("aarch64", made, ("fork",), execs=False, forks=False)
    assert not arm.threads_only and "fork" not in arm.calls


@pytest.mark.parametrize(
    "content",
    [b"[1, 2]", b'{"syscalls": "read"}', b"\xff\xfe", b"[" * 100_000, b"[{}," * 400_000 + b"{}]"],
)
def test_trace_refuses_a_profile_that_is_not_one_naming_it(tmp_path: Path, content: bytes) -> None:
    """`buildkit trace --profile` reads the release's profile: input, bounded, refused
    naming the file (exit 2) rather than a traceback or gigabytes of memory."""
    from buildkit.errors import InputError
    from buildkit.seccomp.trace import _from_profile

    profile = tmp_path / "x.seccomp.json"
    profile.write_bytes(content)
    with pytest.raises(InputError, match=r"--profile .*x\.seccomp\.json is not an OCI seccomp"):
        _from_profile(profile, set(), set())


def test_a_recorded_call_allows_what_an_older_c_library_makes_instead() -> None:
    # glibc 2.36 stats with newfstatat and starts threads with clone3; glibc 2.31 (the
    # bastion's Debian 11) calls lstat and clone for the same
    profile = seccomp.make("x86_64", {"checks": ["newfstatat", "clone3", "openat"]})
    assert {"lstat", "stat", "fstat", "clone", "open"} <= set(profile.calls)
    program = seccomp.make_program("x86_64", ["newfstatat", "clone3"], execs=False, forks=False)
    assert "lstat" in program.calls and "clone" in program.calls
    assert "clone3" not in program.calls and "execve" not in program.calls
    # aarch64 has only the *at forms: the others are left out, not refused
    arm = seccomp.make("aarch64", {"checks": ["newfstatat"]})
    assert "lstat" not in arm.calls and "newfstatat" in arm.calls
    # a sibling never gives another capability: nothing new beyond the group
    assert set(seccomp.with_siblings(["read"])) == {"read"}
