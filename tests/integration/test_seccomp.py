"""System call recording and the seccomp profile: real strace, real QEMU, real libseccomp,
and a filter installed by a real loader (compiled here with zig) to show the recorded
profile allows what the program did and denies what it did not."""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from buildkit import seccomp
from buildkit.seccomp import libseccomp, record
from tests.conftest import with_hardening
from tests.integration.conftest import buildkit

pytestmark = pytest.mark.integration

# Installs the classic BPF program in argv[1] (no_new_privs first, as an unprivileged
# program must), then executes argv[2:]: the filter applies to it and its children.
LOADER = r"""
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
int main(int argc, char **argv) {
    static struct sock_filter prog[4096];
    FILE *f = fopen(argv[1], "rb");
    if (!f) { perror(argv[1]); return 120; }
    size_t n = fread(prog, sizeof(prog[0]), 4096, f);
    fclose(f);
    struct sock_fprog fprog = { (unsigned short)n, prog };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) { perror("no_new_privs"); return 121; }
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) != 0) {
        perror("seccomp"); return 122;
    }
    execv(argv[2], argv + 2);
    perror("execv");
    return 123;
}
"""

# Makes a few ordinary calls; with "fork" also starts a child (clone, wait4).
PROGRAM = r"""
import os, socket, sys
print(len(os.listdir("/")), socket.socket().fileno() > 2)
if sys.argv[1:] == ["inet6"]:
    try:
        socket.socket(socket.AF_INET6)
    except PermissionError as exc:
        print("inet6 refused:", exc)
        sys.exit(4)
    print("inet6 allowed")
if sys.argv[1:] == ["fork"]:
    try:
        pid = os.fork()
    except PermissionError as exc:
        print("fork refused:", exc)
        sys.exit(3)
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    print("forked")
"""

PYTHON = Path("/usr/bin/python3")


def _zig() -> list[str]:
    return [sys.executable, "-m", "ziglang"]


@pytest.fixture(scope="module")
def loader(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("loader")
    (folder / "loader.c").write_text(LOADER)
    out = folder / "loader"
    subprocess.run(
        [*_zig(), "cc", "-target", "x86_64-linux-musl", "-static", "-O2", "-o", out,
         folder / "loader.c"],
        check=True,
    )  # fmt: skip
    return out


def _compile_oci(doc: dict[str, Any], arch: str, action: int) -> bytes:
    """What a consumer does with the OCI JSON: every rule of names allowed outright, and
    the socket() rules limited by their first argument (each a 32-bit masked compare)."""
    names: set[str] = set()
    families: list[int] | None = None
    for rule in doc["syscalls"]:
        assert rule["action"] == "SCMP_ACT_ALLOW", rule
        if not rule.get("args"):
            names |= set(rule["names"])
            continue
        assert rule["names"] == ["socket"], rule
        (arg,) = rule["args"]
        assert (arg["index"], arg["op"], arg["value"]) == (0, "SCMP_CMP_MASKED_EQ", 0xFFFFFFFF)
        families = [*(families or []), int(arg["valueTwo"])]
    if families is not None:
        names.add("socket")
    names = {n for n in names if libseccomp.number(arch, n) is not None}
    return libseccomp.compile_bpf(arch, names, default_action=action, socket_families=families)


def _strace(tmp_path: Path, *argv: str | Path) -> frozenset[str]:
    logs = tmp_path / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    strace = shutil.which("strace")
    assert strace, "ci/setup installs strace"
    subprocess.run(
        [strace, "-f", "-qq", "-o", logs / f"s.{len(list(logs.iterdir()))}", "--", *argv],
        check=True,
        capture_output=True,
    )
    return record.from_strace("x86_64", logs.iterdir())


@pytest.mark.skipif(not PYTHON.exists(), reason="needs Debian's python3")
def test_strace_records_what_a_real_program_calls(tmp_path: Path) -> None:
    script = tmp_path / "p.py"
    script.write_text(PROGRAM)
    plain = _strace(tmp_path / "a", PYTHON, "-I", script)
    forked = _strace(tmp_path / "b", PYTHON, "-I", script, "fork")
    assert {"execve", "openat", "getdents64", "socket", "write", "exit_group"} <= plain
    assert "wait4" not in plain
    assert "wait4" in forked and ({"clone", "clone3", "fork", "vfork"} & forked)
    # names only the tracer uses ("+++", "---", "resumed") are not calls
    assert all(libseccomp.number("x86_64", n) is not None for n in forked)


@pytest.mark.skipif(not PYTHON.exists(), reason="needs Debian's python3")
def test_the_recorded_profile_allows_the_run_and_denies_what_it_never_did(
    tmp_path: Path, loader: Path
) -> None:
    script = tmp_path / "p.py"
    script.write_text(PROGRAM)
    calls = _strace(tmp_path, PYTHON, "-I", script)
    families = record.families((tmp_path / "logs").iterdir())
    assert families is not None and "AF_INET" in families and "AF_INET6" not in families
    profile = seccomp.make("x86_64", {"p.py": calls}, families=families)
    assert not {"clone", "clone3", "fork", "wait4"} & set(profile.calls)
    assert profile.families == seccomp.sorted_families(families)
    # the OCI JSON is what a consumer reads: compile from it, not from our own list
    doc = json.loads(profile.oci_text())
    assert doc["defaultAction"] == "SCMP_ACT_ERRNO"
    assert doc["architectures"] == ["SCMP_ARCH_X86_64"]
    allowed = doc["syscalls"][0]
    assert "socket" not in allowed["names"] and len(doc["syscalls"]) == 1 + len(families)
    bpf = tmp_path / "filter.bpf"
    bpf.write_bytes(_compile_oci(doc, "x86_64", libseccomp.act_errno()))
    ran = subprocess.run(
        [loader, bpf, PYTHON, "-I", script], check=False, capture_output=True, text=True
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == [str(len(list(Path("/").iterdir()))), "True"]
    refused = subprocess.run(
        [loader, bpf, PYTHON, "-I", script, "fork"], check=False, capture_output=True, text=True
    )
    assert refused.returncode == 3, refused.stderr
    assert "fork refused: [Errno 1] Operation not permitted" in refused.stdout
    # socket() is allowed for the families the run asked for only
    inet6 = subprocess.run(
        [loader, bpf, PYTHON, "-I", script, "inet6"], check=False, capture_output=True, text=True
    )
    assert inet6.returncode == 4, inet6.stderr
    assert "inet6 refused: [Errno 1] Operation not permitted" in inet6.stdout
    # and the systemd drop-in says the same with RestrictAddressFamilies=
    assert "RestrictAddressFamilies=" + " ".join(profile.families or ()) in profile.systemd_text(
        "p"
    )
    # the same list compiled for aarch64 kills an x86_64 process at its first call: the
    # filter checks the architecture first (and an errno answer would deny even exit)
    other = tmp_path / "arm.bpf"
    other.write_bytes(_compile_oci(doc, "aarch64", libseccomp.SCMP_ACT_KILL_PROCESS))
    wrong = subprocess.run(
        [loader, other, PYTHON, "-I", "-c", "pass"], check=False, capture_output=True
    )
    assert wrong.returncode == -signal.SIGSYS


def test_qemu_log_names_the_guest_calls_and_the_ones_it_only_numbers(tmp_path: Path) -> None:
    if not shutil.which("qemu-aarch64-static"):
        pytest.skip("needs qemu-user-static (ci/setup installs it)")
    src = tmp_path / "rseq.c"
    src.write_text(
        "#include <unistd.h>\n#include <sys/syscall.h>\n#include <sys/socket.h>\n"
        "int main(void) { syscall(293, 0, 0, 0, 0); socket(AF_INET, SOCK_STREAM, 0);\n"
        "  socket(AF_INET6, SOCK_DGRAM, 0); return getppid() > 0 ? 0 : 1; }\n"
    )
    exe = tmp_path / "rseq"
    subprocess.run([*_zig(), "cc", "-target", "aarch64-linux-musl", "-static", "-o", exe, src],
                   check=True)  # fmt: skip
    logs = tmp_path / "logs"
    logs.mkdir()
    subprocess.run(
        ["qemu-aarch64-static", exe],
        env={"QEMU_LOG": "strace", "QEMU_LOG_FILENAME": f"{logs}/q.%d"},
        check=True,
    )
    text = "".join(p.read_text() for p in logs.iterdir())
    assert "Unknown syscall 293" in text  # QEMU 7.2 has no name for it
    calls = record.from_qemu("aarch64", logs.iterdir())
    assert {"rseq", "getppid", "exit_group", "socket"} <= calls
    # QEMU names some families (PF_INET) and numbers others (10): both read as names
    assert record.families(logs.iterdir()) == {"AF_INET", "AF_INET6"}
    assert "open" not in calls and libseccomp.number("aarch64", "open") is None


def test_a_log_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real").write_text("1 read(0) = 0\n")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(Exception, match="not a regular file"):
        record.from_strace("x86_64", [tmp_path / "link"])


def test_a_build_ships_the_profile_its_checks_recorded(recipe_copy, tmp_path: Path) -> None:
    recipe = recipe_copy("portcheck")
    out = tmp_path / "dist"
    buildkit("build", recipe, "--target", "linux-amd64", "--format", "shiv", "--out", out)
    stem = "portcheck-1.0.0-linux-amd64"
    profile = json.loads((out / f"{stem}.seccomp.json").read_text())
    allowed, *limited = profile["syscalls"]
    # the checks connect to a port: the network calls are in, fork is not (never made)
    assert {"connect", "execve"} <= set(allowed["names"])
    assert "ptrace" not in allowed["names"]
    # socket() only for the families the checks asked for: TCP over IPv4
    assert "socket" not in allowed["names"]
    families = {rule["args"][0]["valueTwo"] for rule in limited if rule["names"] == ["socket"]}
    assert socket.AF_INET in families and socket.AF_PACKET not in families, limited
    conf = (out / f"{stem}.seccomp.conf").read_text()
    assert "SystemCallFilter=" in conf and " connect " in conf.replace("\n", " ") + " "
    assert "\nRestrictAddressFamilies=AF_" in conf and "AF_INET" in conf
    sums = (out / "SHA256SUMS").read_text()
    assert f"{stem}.seccomp.json" in sums and f"{stem}.seccomp.conf" in sums
    manifest = json.loads((out / "manifest.json").read_text())
    (entry,) = manifest["artifacts"]
    assert entry["checks"]["syscalls"]["arch"] == "x86_64"
    assert entry["checks"]["syscalls"]["recorder"] == "strace"
    # the SBOM and the provenance name the profiles as outputs of the build, by sha256
    digest = hashlib.sha256((out / f"{stem}.seccomp.json").read_bytes()).hexdigest()
    bom = json.loads((out / "portcheck-1.0.0.cdx.json").read_text())
    files = {c["name"]: c for c in bom["components"] if c["type"] == "file"}
    assert files[f"{stem}.seccomp.json"]["hashes"][0]["content"] == digest
    statement = json.loads((out / "portcheck-1.0.0.intoto.jsonl").read_text())
    subjects = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
    assert subjects[f"{stem}.seccomp.json"] == digest and f"{stem}.seccomp.conf" in subjects
    buildkit("verify", out)
    # a profile edited after the build (a call added) no longer verifies
    allowed["names"].append("ptrace")
    (out / f"{stem}.seccomp.json").write_text(json.dumps(profile))
    bad = buildkit("verify", out, check=False)
    assert bad.returncode == 1
    assert "seccomp" in bad.stdout and "differs from the calls the manifest records" in bad.stdout


def test_recipe_additions_reach_the_profile_and_unknown_names_are_refused(
    recipe_copy, tmp_path: Path
) -> None:
    recipe = recipe_copy("portcheck")
    toml = recipe / "recipe.toml"
    base = toml.read_text()
    table = '[hardening]\nrequire = []\nseccomp_allow = ["ptrace", "AF_INET6"]\n'
    toml.write_text(with_hardening(base, table))
    out = tmp_path / "dist"
    buildkit("build", recipe, "--target", "linux-amd64", "--format", "shiv", "--out", out)
    names = json.loads((out / "portcheck-1.0.0-linux-amd64.seccomp.json").read_text())
    assert "ptrace" in names["syscalls"][0]["names"]
    # the family added by hand joins the ones the checks used
    families = {r["args"][0]["valueTwo"] for r in names["syscalls"] if r.get("args")}
    assert {socket.AF_INET, socket.AF_INET6} <= families
    for bad, said in (
        ("forkk", "'forkk' is not a system call of x86_64 or aarch64"),
        ("AF_NOSUCH", "'AF_NOSUCH' is not an address family of Linux"),
    ):
        toml.write_text(with_hardening(base, table.replace("ptrace", bad)))
        refused = buildkit(
            "build", recipe, "--target", "linux-amd64", "--format", "shiv", "--out",
            tmp_path / "d2", check=False,
        )  # fmt: skip
        assert refused.returncode == 2, refused.stderr
        assert said in refused.stderr
        assert not (tmp_path / "d2").exists()
    toml.write_text(with_hardening(base, '[hardening]\nrequire = []\nseccomp = "enforce"\n'))
    enforce = buildkit(
        "build", recipe, "--target", "linux-amd64", "--format", "shiv", "--out", tmp_path / "d3",
        check=False,
    )  # fmt: skip
    # a zipapp carries the program filter in its boot module (test_seccomp_zipapp.py), and
    # ships with the profile
    assert enforce.returncode == 0, enforce.stderr
    assert "built again with its program's seccomp filter" in enforce.stderr
    assert "carry no filter of their own" not in enforce.stderr
    assert (tmp_path / "d3" / "portcheck-1.0.0-linux-amd64.seccomp.json").is_file()


def test_checks_that_only_ask_for_help_are_warned_about(recipe_copy, tmp_path: Path) -> None:
    recipe = recipe_copy("portcheck")
    toml = recipe / "recipe.toml"
    text = toml.read_text()
    toml.write_text(
        text[: text.index("[[checks]]")]
        + '[[checks]]\nname = "help"\nargs = ["--help"]\nstdout = "HOST:PORT"\n'
    )
    done = buildkit("build", recipe, "--target", "linux-amd64", "--format", "shiv", "--out",
                    tmp_path / "dist")  # fmt: skip
    assert "only ask the program about itself" in done.stderr
    toml.write_text(text)  # checks that do the work: no warning
    again = buildkit("build", recipe, "--target", "linux-amd64", "--format", "shiv", "--out",
                     tmp_path / "dist2")  # fmt: skip
    assert "only ask the program about itself" not in again.stderr


def test_trace_refuses_what_it_cannot_run_or_edit(recipe_copy, tmp_path: Path) -> None:
    recipe = recipe_copy("portcheck")
    foreign = tmp_path / "arm-binary"
    foreign.write_bytes(b"\x7fELF\x02\x01\x01" + bytes(11) + b"\xb7\x00" + bytes(44))
    refused = buildkit("trace", recipe, "--artifact", foreign, "--", "--help", check=False)
    assert refused.returncode == 2
    assert "is not a program for this machine" in refused.stderr
    missing = buildkit("trace", recipe, "--out", tmp_path / "nowhere", check=False)
    assert missing.returncode == 2 and "build the recipe first" in missing.stderr
    # a seccomp_allow written over several lines is not edited: the calls are printed
    toml = recipe / "recipe.toml"
    toml.write_text(
        with_hardening(
            toml.read_text(), '[hardening]\nrequire = []\nseccomp_allow = [\n  "ptrace",\n]\n'
        )
    )
    before = toml.read_text()
    script = tmp_path / "probe.sh"
    script.write_text("#!/bin/sh\nexec /bin/sleep 0\n")
    script.chmod(0o755)
    done = buildkit("trace", recipe, "--artifact", script, "--json", "--", check=False)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["added"] and doc["recipe_changed"] is False
    assert "spans several lines" in done.stderr
    assert toml.read_text() == before
