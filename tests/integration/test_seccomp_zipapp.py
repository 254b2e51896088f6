"""seccomp = "enforce" for zipapps: portcheck's real pex and shiv zipapps install the
program filter from their boot module (ctypes, no libseccomp) before the program is
imported. Their checks pass under it; a fork, an exec and a call the checks never made
fail with EPERM; they start under the release's own OCI profile loaded by libseccomp; a
Python without ctypes makes them stop with a message (or run, as
BUILDKIT_SECCOMP_UNAVAILABLE=run says); checks that fork and exec make a filter that
allows both."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import buildkit
from tests.integration.test_seccomp_enforce import FORK_AND_EXEC, ROOT, _variant

pytestmark = pytest.mark.integration

NAMES = ("portcheck-1.0.0-linux-amd64.pex", "portcheck-1.0.0-linux-amd64.pyz")
#: A python3.11 without ctypes, as the shiv header starts it (python3.11 -I APP ARGS).
NO_CTYPES = """\
import runpy, sys
sys.modules["ctypes"] = None
app = [a for a in sys.argv[1:] if a != "-I"]
sys.argv = app
runpy.run_path(app[0], run_name="__main__")
"""


def _build(recipe: Path, out: Path, cache: Path) -> Any:
    return buildkit(
        "build", recipe, "--format", "pex", "--format", "shiv", "--target", "linux-amd64",
        "--out", out, "--cache-dir", cache, "--json", cwd=recipe.parents[1],
    )  # fmt: skip


def _run(
    app: Path, home: Path, *prefix: str | Path, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, app, "127.0.0.1:1", "--timeout", "1"],
        capture_output=True, text=True, check=False, cwd=ROOT,
        env={**os.environ, "HOME": str(home), **env},
    )  # fmt: skip


def _the_audit_reports_each_boot_filter(out: Path) -> None:
    # the audit reads each boot module: one row per zipapp, in every report format
    report = json.loads((out / "portcheck-1.0.0.hardening.json").read_text())
    boots = [f for f in report["files"] if f["path"].endswith("__buildkit_boot__.py")]
    assert sorted(f["artifact"] for f in boots) == sorted(NAMES), report["files"]
    for row in boots:
        evidence = row["checks"]["seccomp"]["evidence"]
        assert row["checks"]["seccomp"]["state"] == "pass", evidence
        assert "program's own filter" in evidence and "starts no program, threads only" in evidence
    assert any(v["check"] == "seccomp" and v["outcome"] == "pass"
               for v in report["policy"]["verdicts"])  # fmt: skip
    assert "boot module" in (out / "portcheck-1.0.0.hardening.html").read_text()
    # the markdown summary and SARIF list failures only: the gate passed, none here
    assert "passed" in (out / "portcheck-1.0.0.hardening.md").read_text()
    sarif = json.loads((out / "portcheck-1.0.0.hardening.sarif").read_text())
    assert not [r for run in sarif["runs"] for r in run["results"] if "seccomp" in r["ruleId"]]


def test_enforcing_zipapps_install_the_program_filter(
    recipe_copy: Any, tmp_path: Path, cache_dir: Path
) -> None:
    recipe = _variant(recipe_copy, "enforce")
    out = tmp_path / "dist"
    done = _build(recipe, out, cache_dir)
    for name in NAMES:
        assert f"{name}: built again with its program's seccomp filter" in done.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    home = tmp_path / "home"
    shipped = out / "portcheck-1.0.0-linux-amd64.seccomp.json"
    oci = (sys.executable, "-m", "tests.oci_seccomp", shipped, "--")
    for entry in manifest["artifacts"]:
        assert entry["inputs"]["settings"]["seccomp"] == "boot"
        program = entry["checks"]["syscalls"]["program"]
        assert not program["execs"] and not program["forks"]
        assert "execve" not in program["allowed"]
        app = out / entry["name"]
        closed = _run(app, home)
        assert closed.returncode == 1 and "closed" in closed.stdout, closed.stderr
        for probe, code, said in (("PORTCHECK_FORK", 5, "fork refused"),
                                  ("PORTCHECK_EXEC", 6, "exec refused"),
                                  ("PORTCHECK_SETSID", 3, "setsid refused")):  # fmt: skip
            refused = _run(app, home, **{probe: "1"})
            assert refused.returncode == code, (app.name, refused.stdout, refused.stderr)
            assert f"{said}: [Errno 1] Operation not permitted" in refused.stdout
        under = _run(app, home, *oci)
        assert under.returncode == 1 and "closed" in under.stdout, (app.name, under.stderr)
        with socket.create_server(("127.0.0.1", 0)) as listener:
            port = listener.getsockname()[1]
            opened = subprocess.run(
                [*oci, app, f"127.0.0.1:{port}", "--json"],
                capture_output=True, text=True, check=False, cwd=ROOT,
                env={**os.environ, "HOME": str(home)},
            )  # fmt: skip
        assert opened.returncode == 0 and '"open": true' in opened.stdout, opened.stderr

    _the_audit_reports_each_boot_filter(out)

    # buildkit trace tells the program's part of a zipapp's run: a fork needs "fork"
    traced = buildkit(
        "trace", recipe, "--out", out, "--artifact", out / NAMES[0], "--json", "--dry-run",
        "--", "127.0.0.1:1", env={"HOME": str(home), "PORTCHECK_FORK": "1"}, check=False,
    )  # fmt: skip
    assert "fork" in json.loads(traced.stdout)["added"], traced.stdout

    # a Python without ctypes cannot install the filter: the zipapp says so and stops
    wrapper = tmp_path / "bin"
    wrapper.mkdir()
    (tmp_path / "no_ctypes.py").write_text(NO_CTYPES)
    fake = wrapper / "python3.11"
    fake.write_text(f'#!/bin/sh\nexec /usr/bin/python3.11 -I {tmp_path / "no_ctypes.py"} "$@"\n')
    fake.chmod(0o755)
    path = f"{wrapper}:/usr/bin:/bin"
    pyz = out / NAMES[1]
    stopped = _run(pyz, home, PATH=path)
    assert stopped.returncode == 126, (stopped.stdout, stopped.stderr)
    assert "its program's seccomp filter cannot be installed (this Python has no ctypes" in (
        stopped.stderr
    )
    told = _run(pyz, home, PATH=path, BUILDKIT_SECCOMP_UNAVAILABLE="run")
    assert told.returncode == 1 and "closed" in told.stdout, told.stderr
    assert "running without it as BUILDKIT_SECCOMP_UNAVAILABLE says" in told.stderr

    # checks that fork and exec: the program filter allows both
    toml = recipe / "recipe.toml"
    toml.write_text(toml.read_text().replace("[hardening]", FORK_AND_EXEC + "\n[hardening]"))
    both = tmp_path / "dist-both"
    _build(recipe, both, cache_dir)
    for name in NAMES:
        forked = _run(both / name, tmp_path / "home2", PORTCHECK_FORK="1")
        assert forked.returncode == 1 and "fork allowed" in forked.stdout, forked.stderr
        execd = _run(both / name, tmp_path / "home2", PORTCHECK_EXEC="1")
        assert execd.returncode == 0 and "exec allowed" in execd.stdout, execd.stderr
