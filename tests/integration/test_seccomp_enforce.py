"""seccomp = "enforce" end to end: portcheck's real Nuitka binary, built with the hermetic
toolchain, carries the two filters its checks recorded (the bootstrap's and the
program's); its checks pass under them, a call the checks never made fails with EPERM, so
do a fork and an exec (which the bootstrap itself needed) until checks that fork and exec
are added; the binary starts under its own shipped OCI profile loaded by libseccomp (as
runc loads it); the audit reports the filters in JSON, SARIF and HTML (and their absence
in a binary built without)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import with_hardening
from tests.integration.conftest import buildkit

pytestmark = pytest.mark.integration

# Runs at import, before main(): with PORTCHECK_SETSID set (the checks never set it), the
# program asks for a call its checks never made.
PROBE = """\
import os as _os
if _os.environ.get("PORTCHECK_SETSID"):
    try:
        _os.setsid()
        print("setsid allowed")
    except PermissionError as _exc:
        print("setsid refused:", _exc)
        raise SystemExit(3)
if _os.environ.get("PORTCHECK_PACKET"):
    import socket as _socket
    try:
        _socket.socket(_socket.AF_PACKET, _socket.SOCK_RAW)
        print("packet socket allowed")
    except PermissionError as _exc:
        print("packet socket refused:", _exc)
        raise SystemExit(4)
if _os.environ.get("PORTCHECK_FORK"):
    try:
        _pid = _os.fork()
    except PermissionError as _exc:
        print("fork refused:", _exc)
        raise SystemExit(5)
    if _pid == 0:
        _os._exit(0)
    _os.waitpid(_pid, 0)
    print("fork allowed", flush=True)
if _os.environ.get("PORTCHECK_EXEC"):
    import sys as _sys
    _sys.stdout.flush()
    try:
        _os.execv("/bin/sh", ["sh", "-c", "echo exec allowed"])
    except PermissionError as _exc:
        print("exec refused:", _exc)
        raise SystemExit(6)
"""
#: Checks that fork and exec: the program's filter then allows both.
FORK_AND_EXEC = """
[[checks]]
name = "forks"
args = ["127.0.0.1:{closed_port}", "--timeout", "5"]
env = { PORTCHECK_FORK = "1" }
exit = 1
stdout = "fork allowed"

[[checks]]
name = "execs"
args = ["127.0.0.1:{closed_port}"]
env = { PORTCHECK_EXEC = "1" }
stdout = "exec allowed"
"""
ROOT = Path(__file__).resolve().parents[2]
REQUIRE = '["relro-full", "canary", "nx", "pie", "fortify", "glibc", "seccomp"]'


def _variant(recipe_copy: Any, mode: str) -> Path:
    recipe = recipe_copy("portcheck")
    cli = recipe / "src" / "portcheck" / "cli.py"
    text = cli.read_text()
    head, sep, rest = text.partition("from __future__ import annotations\n")
    cli.write_text(head + sep + PROBE + rest if sep else PROBE + text)
    toml = recipe / "recipe.toml"
    toml.write_text(
        with_hardening(toml.read_text(), f'[hardening]\nrequire = {REQUIRE}\nseccomp = "{mode}"')
    )
    return recipe


def _build(recipe: Path, out: Path, cache: Path, *, check: bool = True) -> Any:
    return buildkit(
        "build", recipe, "--format", "nuitka", "--target", "linux-amd64", "--out", out,
        "--cache-dir", cache, "--json", cwd=recipe.parents[1], check=check,
    )  # fmt: skip


def _run(binary: Path, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary, "127.0.0.1:1", "--timeout", "1"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(home / "cache"), **env},
    )


def _reports_show_the_filter(out: Path, name: str) -> None:
    report = json.loads((out / "portcheck-1.0.0.hardening.json").read_text())
    top = next(f for f in report["files"] if f["path"] == name)
    assert top["checks"]["seccomp"]["state"] == "pass"
    assert "calls allowed on x86_64" in top["checks"]["seccomp"]["evidence"]
    assert "socket() only for AF_INET" in top["checks"]["seccomp"]["evidence"]
    inner = [f for f in report["files"] if f["path"] != name]
    assert inner and all(f["checks"]["seccomp"]["state"] == "n/a" for f in inner)
    assert any(
        v["check"] == "seccomp" and v["outcome"] == "pass" for v in report["policy"]["verdicts"]
    )
    html = (out / "portcheck-1.0.0.hardening.html").read_text()
    assert "seccomp" in html and "calls allowed on x86_64" in html
    sarif = json.loads((out / "portcheck-1.0.0.hardening.sarif").read_text())
    # rules are per check and component, listed only when a result uses them
    results = [r for run in sarif["runs"] for r in run["results"]]
    assert results and not [r for r in results if r["ruleId"].startswith("BK/seccomp/")]


def _trace_adds_what_a_manual_run_needs(
    recipe: Path, out: Path, name: str, tmp_path: Path, cache_dir: Path
) -> None:
    """A run the checks do not cover: buildkit trace adds its calls (and socket families)
    to the recipe, and the next build (the same Nuitka output, armed with the larger
    profile) allows them."""
    env = {"HOME": str(tmp_path / "home3"), "PORTCHECK_SETSID": "1"}
    traced = buildkit("trace", recipe, "--out", out, "--json", "--", "127.0.0.1:1",
                      env=env)  # fmt: skip
    assert json.loads(traced.stdout)["added"] == ["setsid"], traced.stdout
    assert 'seccomp_allow = ["setsid"]' in (recipe / "recipe.toml").read_text()
    # a run whose program forks (refused under the program's filter, which strace still
    # sees): the recipe must say "fork"; a dry run says so and changes nothing
    env = {"HOME": str(tmp_path / "home3"), "PORTCHECK_FORK": "1"}
    traced = buildkit("trace", recipe, "--out", out, "--json", "--dry-run", "--",
                      "127.0.0.1:1", env=env, check=False)  # fmt: skip
    assert json.loads(traced.stdout)["added"] == ["fork"], traced.stdout
    assert 'seccomp_allow = ["setsid"]' in (recipe / "recipe.toml").read_text()
    # and an address family the checks never asked for (strace sees the refused call)
    env = {"HOME": str(tmp_path / "home3"), "PORTCHECK_PACKET": "1"}
    traced = buildkit("trace", recipe, "--out", out, "--json", "--", "127.0.0.1:1",
                      env=env)  # fmt: skip
    assert json.loads(traced.stdout)["added"] == ["AF_PACKET"], traced.stdout
    assert 'seccomp_allow = ["AF_PACKET", "setsid"]' in (recipe / "recipe.toml").read_text()
    rebuilt = _build(recipe, tmp_path / "dist-traced", cache_dir)
    assert "-m nuitka" not in rebuilt.stderr
    now = _run(tmp_path / "dist-traced" / name, tmp_path / "home4", PORTCHECK_SETSID="1")
    assert "setsid allowed" in now.stdout, now.stderr
    now = _run(tmp_path / "dist-traced" / name, tmp_path / "home4", PORTCHECK_PACKET="1")
    assert "packet socket allowed" in now.stdout, now.stderr


def _the_program_may_neither_fork_nor_exec(binary: Path, out: Path, tmp_path: Path) -> None:
    # the bootstrap forked and exec'd the program; the program itself may do neither
    forked = _run(binary, tmp_path / "home", PORTCHECK_FORK="1")
    assert forked.returncode == 5, (forked.stdout, forked.stderr)
    assert "fork refused: [Errno 1] Operation not permitted" in forked.stdout
    execd = _run(binary, tmp_path / "home", PORTCHECK_EXEC="1")
    assert execd.returncode == 6, (execd.stdout, execd.stderr)
    assert "exec refused: [Errno 1] Operation not permitted" in execd.stdout
    # the recipe's three checks under its own shipped profile, loaded by libseccomp as
    # runc loads it
    shipped = out / "portcheck-1.0.0-linux-amd64.seccomp.json"
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        for args, code, said in (
            ([f"127.0.0.1:{port}", "--timeout", "5"], 0, "open "),
            (["127.0.0.1:1", "--timeout", "5"], 1, "closed"),
            ([f"127.0.0.1:{port}", "--json"], 0, '"open": true'),
        ):
            under = subprocess.run(
                [sys.executable, "-m", "tests.oci_seccomp", shipped, "--", binary, *args],
                capture_output=True, text=True, check=False, cwd=ROOT,
                env={**os.environ, "HOME": str(tmp_path / "home")},
            )  # fmt: skip
            assert under.returncode == code and said in under.stdout, (args, under.stderr)


def _checks_that_fork_and_exec_allow_both(
    recipe: Path, name: str, tmp_path: Path, cache_dir: Path
) -> None:
    # checks that fork and exec: the same Nuitka output, a program filter that allows both
    toml = recipe / "recipe.toml"
    toml.write_text(toml.read_text().replace("[hardening]", FORK_AND_EXEC + "\n[hardening]"))
    both = _build(recipe, tmp_path / "dist-both", cache_dir)
    assert "-m nuitka" not in both.stderr and "may start programs, may fork" in both.stderr
    forked = _run(tmp_path / "dist-both" / name, tmp_path / "home5", PORTCHECK_FORK="1")
    assert forked.returncode == 1 and "fork allowed" in forked.stdout, forked.stderr
    execd = _run(tmp_path / "dist-both" / name, tmp_path / "home5", PORTCHECK_EXEC="1")
    assert execd.returncode == 0 and "exec allowed" in execd.stdout, execd.stderr


def test_an_enforcing_nuitka_binary_refuses_calls_its_checks_never_made(
    recipe_copy: Any, tmp_path: Path, cache_dir: Path
) -> None:
    recipe = _variant(recipe_copy, "enforce")
    out = tmp_path / "dist"
    done = _build(recipe, out, cache_dir)
    assert "seccomp filters written" in done.stderr
    assert "program: " in done.stderr and "starts no program, threads only" in done.stderr
    assert "running the checks again, under the filters" in done.stderr
    binary = out / "portcheck-1.0.0-linux-amd64"
    closed = _run(binary, tmp_path / "home")
    assert closed.returncode == 1 and "closed" in closed.stdout, closed.stderr
    _the_program_may_neither_fork_nor_exec(binary, out, tmp_path)
    refused = _run(binary, tmp_path / "home", PORTCHECK_SETSID="1")
    assert refused.returncode == 3, refused.stderr
    assert "setsid refused: [Errno 1] Operation not permitted" in refused.stdout
    # socket() itself is allowed, for the families the checks used only (as root a
    # packet socket would otherwise open)
    packet = _run(binary, tmp_path / "home", PORTCHECK_PACKET="1")
    assert packet.returncode == 4, (packet.stdout, packet.stderr)
    assert "packet socket refused: [Errno 1] Operation not permitted" in packet.stdout
    # what the release says about it
    (entry,) = json.loads((out / "manifest.json").read_text())["artifacts"]
    calls = entry["checks"]["syscalls"]["calls"]
    assert "setsid" not in calls and {"connect", "socket"} <= set(calls)
    assert entry["checks"]["status"] == "passed"
    assert entry["inputs"]["settings"]["seccomp"] == "slot"
    _reports_show_the_filter(out, binary.name)
    assert buildkit("verify", out).returncode == 0

    _trace_adds_what_a_manual_run_needs(recipe, out, binary.name, tmp_path, cache_dir)

    _checks_that_fork_and_exec_allow_both(recipe, binary.name, tmp_path, cache_dir)

    # the same program built with seccomp = "record": no filter, setsid works, and the
    # audit says so in every format
    toml = recipe / "recipe.toml"
    plain_require = REQUIRE.replace(', "seccomp"', "")
    toml.write_text(with_hardening(toml.read_text(), f"[hardening]\nrequire = {plain_require}\n"))
    out2 = tmp_path / "dist2"
    _build(recipe, out2, cache_dir)
    unfiltered = out2 / binary.name
    allowed = _run(unfiltered, tmp_path / "home2", PORTCHECK_SETSID="1")
    assert "setsid allowed" in allowed.stdout, allowed.stderr
    report2 = json.loads((out2 / "portcheck-1.0.0.hardening.json").read_text())
    top2 = next(f for f in report2["files"] if f["path"] == binary.name)
    assert top2["checks"]["seccomp"]["state"] == "fail"
    assert "no seccomp filter" in top2["checks"]["seccomp"]["evidence"]
    assert "no seccomp filter" in (out2 / "portcheck-1.0.0.hardening.html").read_text()
    sarif2 = json.loads((out2 / "portcheck-1.0.0.hardening.sarif").read_text())
    found = [r for r in sarif2["runs"][0]["results"] if r["ruleId"] == "BK/seccomp/own"]
    assert found and "no seccomp filter" in json.dumps(found[0])
    # and a gate that requires the filter refuses that binary: nothing published
    toml.write_text(with_hardening(toml.read_text(), f"[hardening]\nrequire = {REQUIRE}\n"))
    rejected = _build(recipe, tmp_path / "dist3", cache_dir, check=False)
    assert rejected.returncode == 1, rejected.stderr
    assert "seccomp" in rejected.stderr
    assert not (tmp_path / "dist3" / binary.name).exists()
