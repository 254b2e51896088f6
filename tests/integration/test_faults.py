"""Faults injected with the real mechanism: signals to real builds, builds running at
once on one cache, a full file system (tmpfs)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from buildkit.release.publish import leftovers, listing_problems
from tests.conftest import RECIPES, ROOT
from tests.integration.conftest import buildkit

pytestmark = [pytest.mark.integration, pytest.mark.faults]

AMD64 = ("--target", "linux-amd64")


def zipapps(recipe: str, out: Path, cache: Path) -> list[str | Path]:
    return ["build", RECIPES / recipe, *AMD64, "--format", "pex", "--format", "shiv",
            "--out", out, "--cache-dir", cache]  # fmt: skip


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def cache_problems(cache: Path) -> list[str]:
    """Entries of the cache that are torn, or point at nothing; tmp/ folders left over."""
    problems = []
    for wheel in (cache / "wheels").glob("*/*/*"):
        if hashlib.sha256(wheel.read_bytes()).hexdigest() != wheel.parent.name:
            problems.append(f"wheel {wheel} does not match its digest")
    for blob in (cache / "blobs").glob("*/*"):
        if hashlib.sha256(blob.read_bytes()).hexdigest() != blob.name:
            problems.append(f"blob {blob} does not match its digest")
    for action in (cache / "actions").glob("*/*.json"):
        digest = json.loads(action.read_text())["sha256"]
        if not (cache / "blobs" / digest[:2] / digest).is_file():
            problems.append(f"action {action} points at a missing blob")
    tmp = cache / "tmp"
    if tmp.is_dir():
        problems += [f"left in tmp/: {p.name}" for p in tmp.iterdir() if p.is_dir()]
    return problems


def test_sigkill_at_30_points_leaves_nothing_corrupt() -> None:
    """The kill harness: 30 SIGKILLs spread over lock, fetch, build, audit and release;
    after each, the release folder, lockfiles and cache are checked, and the job is run
    again to the reference's exact bytes."""
    proc = subprocess.run(
        [sys.executable, ROOT / "bench" / "kill_builds.py", "--runs", "30", "--format", "shiv"],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert lines[-1] == "30 runs, 0 corrupt files, 0 inconsistent cache entries"
    phases = dict(
        (name, int(count))
        for name, count in re.findall(r"(\w+) (\d+)", lines[-2].removeprefix("kills by phase: "))
    )
    assert phases == {"lock": 6, "fetch": 6, "build": 6, "audit": 6, "release": 6}


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_stop_signals_unwind_cleanly(tmp_path: Path, sig: signal.Signals, code: int) -> None:
    out, cache = tmp_path / "dist", tmp_path / "cache"
    proc = subprocess.Popen(
        [sys.executable, "-m", "buildkit", *map(str, zipapps("hostmetrics", out, cache))],
        cwd=ROOT,
        env={**os.environ, "CI": "true"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:  # stop it while pex runs
        seen.append(line)
        if line.startswith("buildkit: building "):
            break
    proc.send_signal(sig)
    watchdog = threading.Timer(180, proc.kill)  # a hung unwind fails the test, not CI
    watchdog.start()
    try:
        seen += proc.stderr.readlines()
        assert proc.wait(timeout=60) == code, "".join(seen)
    finally:
        watchdog.cancel()
    errors = [line for line in seen if "error" in line]
    assert errors == [
        f"buildkit: error: stopped by {sig.name}; nothing half-written was kept "
        "(run the same command again to finish)\n"
    ], "".join(seen)
    assert not out.exists() or (leftovers(out) == [] and listing_problems(out) == [])
    assert cache_problems(cache) == []
    left = subprocess.run(
        ["pgrep", "-f", str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert left.stdout == "", "tools still running after buildkit stopped"
    buildkit(*zipapps("hostmetrics", out, cache))
    buildkit("verify", out)


def test_concurrent_builds_share_one_cache(tmp_path: Path) -> None:
    """4 builds of one recipe and 2 of others into one folder, all at once on one cache:
    each gives the bytes of a lone build, and the cache is consistent afterwards."""
    lone: dict[str, Path] = {}
    for recipe in ("hostmetrics", "portcheck", "healthcheck"):
        lone[recipe] = tmp_path / f"lone-{recipe}"
        buildkit(*zipapps(recipe, lone[recipe], tmp_path / f"lone-cache-{recipe}"))
    cache, shared = tmp_path / "cache", tmp_path / "shared"
    jobs = [zipapps("hostmetrics", tmp_path / f"out{i}", cache) for i in range(4)]
    jobs += [zipapps(r, shared, cache) for r in ("portcheck", "healthcheck")]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "buildkit", *map(str, job)],
            cwd=ROOT,
            env={**os.environ, "CI": "true"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for job in jobs
    ]
    results = [(p.wait(timeout=900), p.stderr.read() if p.stderr else "") for p in procs]
    assert [rc for rc, _ in results] == [0] * 6, results
    for i in range(4):
        assert files_of(tmp_path / f"out{i}") == files_of(lone["hostmetrics"])
    both = files_of(shared)
    for recipe in ("portcheck", "healthcheck"):
        for name, data in files_of(lone[recipe]).items():
            if name not in ("SHA256SUMS", "manifest.json"):
                assert both[name] == data, name
    listed = {a["name"] for a in json.loads((shared / "manifest.json").read_text())["artifacts"]}
    assert {n.split("-1.0.0-")[0] for n in listed} == {"portcheck", "healthcheck"}
    assert len(listed) == 4  # no lost update: both recipes' pex and pyz
    buildkit("verify", shared)
    assert cache_problems(cache) == []


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 700 KiB tmpfs (root only), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=700k", "tmpfs", mount], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", mount], check=True)


def grow(mount: Path) -> None:
    subprocess.run(["mount", "-o", "remount,size=64m", mount], check=True)


def test_full_output_disk(tmp_path: Path, small_fs: Path) -> None:
    out, cache = small_fs / "dist", tmp_path / "cache"
    proc = buildkit(*zipapps("hostmetrics", out, cache), check=False)
    assert proc.returncode == 3, proc.stderr
    assert f"error: no space left on the device holding {out}\n" in proc.stderr
    assert leftovers(out) == [] and listing_problems(out) == []
    assert cache_problems(cache) == []
    grow(small_fs)
    buildkit(*zipapps("hostmetrics", out, cache))
    buildkit("verify", out)


def test_full_cache_disk(tmp_path: Path, small_fs: Path) -> None:
    out, cache = tmp_path / "dist", small_fs / "cache"
    proc = buildkit(*zipapps("hostmetrics", out, cache), check=False)
    assert proc.returncode == 3, proc.stderr
    assert re.search(rf"no space left on the device holding {cache}\S* \(\d+ KiB free", proc.stderr)
    assert "nothing half-written was kept" in proc.stderr
    assert not out.exists() or listing_problems(out) == []
    assert cache_problems(cache) == []
    grow(small_fs)
    buildkit(*zipapps("hostmetrics", out, cache))
    buildkit("verify", out)
    assert cache_problems(cache) == []
