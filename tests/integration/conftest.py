from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RECIPES, ROOT, SAMPLES


def buildkit(
    *args: str | Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess, as a user would."""
    proc = subprocess.run(
        [sys.executable, "-m", "buildkit", *map(str, args)],
        cwd=cwd or ROOT,
        env={**os.environ, "CI": "true", **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"buildkit {args} exited {proc.returncode}:\n{proc.stderr}\n{proc.stdout}"
        )
    return proc


def seed_compiler_caches(cache: Path, source: Path) -> None:
    """Copy only the compiler caches of the cache folder ``source`` (ccache, Nuitka's
    and zig's objects) into ``cache``: a build there runs every tool again but compiles
    fast. Nothing else is shared: no wheels, no actions, no artifacts."""
    import shutil

    for tool in ("ccache", "nuitka", "zig"):
        if (source / "tools" / tool).is_dir():
            shutil.copytree(source / "tools" / tool, cache / "tools" / tool)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def run_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for running artifacts: private pex/shiv roots, the real python3.11 first."""
    root = tmp_path_factory.mktemp("runtime")
    return {**os.environ, "PEX_ROOT": str(root / "pex"), "SHIV_ROOT": str(root / "shiv")}


@pytest.fixture(scope="session")
def sample_dist(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Iterator[Path]:
    """Every sample recipe built for every target as pex and shiv, into one dist/."""
    dist = tmp_path_factory.mktemp("dist")
    for name in SAMPLES:
        buildkit(
            "build",
            RECIPES / name,
            "--format",
            "pex",
            "--format",
            "shiv",
            "--out",
            dist,
            "--cache-dir",
            cache_dir,
        )
    yield dist


@pytest.fixture
def ports() -> Iterator[tuple[int, int]]:
    """(a listening port, a closed port) on 127.0.0.1."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        closed_port = closed.getsockname()[1]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1], closed_port


@pytest.fixture(scope="session")
def nuitka_build(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> dict[str, Any]:
    """The samples as onefile binaries for this host, into one dist/, built with the
    hermetic toolchain; their checks also run in the Debian 11 root when it is made
    (ci/emulated-hosts makes it in the hosts' test cache, shared here)."""
    dist = tmp_path_factory.mktemp("nuitka-dist")
    results: dict[str, Any] = {"dist": dist}
    hosts = (
        os.environ.get("BUILDKIT_TEST_HOST_CACHE") or Path.home() / ".cache" / "buildkit-test-hosts"
    )
    if os.geteuid() == 0:  # the Debian 11 root the checks also run in (made or reused)
        buildkit("host", "create", "linux-amd64-bullseye", "--cache-dir", hosts)
    for recipe in SAMPLES:
        proc = buildkit(
            "build",
            RECIPES / recipe,
            "--format",
            "nuitka",
            "--target",
            "linux-amd64",
            "--out",
            dist,
            "--cache-dir",
            cache_dir,
            "--json",
            env={"BUILDKIT_HOSTS_DIR": str(Path(hosts) / "hosts")},
        )
        (artifact,) = json.loads(proc.stdout)["artifacts"]
        results[recipe] = artifact
    # as these builds wrote it (later tests build into the same folder)
    results["manifest"] = json.loads((dist / "manifest.json").read_text())
    return results
