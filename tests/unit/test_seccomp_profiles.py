"""The release's seccomp profiles from manifest records: the union per target, the OCI and
systemd forms, and no libseccomp needed to make them again (verify, assemble)."""

from __future__ import annotations

import json
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
