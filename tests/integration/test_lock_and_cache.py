"""Locks with the real uv and pip-tools; the wheel cache under tampering and offline."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import buildkit

pytestmark = pytest.mark.integration


def test_lock_check_fails_after_edit_passes_after_lock(recipe_copy, tmp_path: Path) -> None:
    recipe = recipe_copy("healthcheck")
    project = recipe.parents[1]
    assert buildkit("lock", "--check", recipe, cwd=project).returncode == 0
    toml = recipe / "recipe.toml"
    toml.write_text(toml.read_text().replace('"urllib3>=2,<3"', '"urllib3>=2.2,<3"'))
    failed = buildkit("lock", "--check", recipe, cwd=project, check=False)
    assert failed.returncode == 1
    assert "lockfiles/healthcheck/linux-amd64.txt: stale" in failed.stderr
    assert failed.stderr.count(": stale") == 4
    # build refuses a stale lock the same way, before doing any work
    built = buildkit(
        "build",
        recipe,
        "--out",
        tmp_path / "dist",
        "--cache-dir",
        tmp_path / "c",
        cwd=project,
        check=False,
    )
    assert built.returncode == 1 and "stale" in built.stderr
    assert not (tmp_path / "dist").exists()
    buildkit("lock", recipe, cwd=project)
    assert buildkit("lock", "--check", recipe, cwd=project).returncode == 0


def test_lock_check_missing_and_unhashed(recipe_copy) -> None:
    recipe = recipe_copy("hostmetrics")
    project = recipe.parents[1]
    lock = project / "lockfiles" / "hostmetrics" / "linux-arm64.txt"
    lock.write_text(
        "".join(ln for ln in lock.read_text().splitlines(True) if "--hash" not in ln).replace(
            " \\", ""
        )
    )
    (project / "lockfiles" / "hostmetrics" / "darwin-arm64.txt").unlink()
    proc = buildkit("lock", "--check", recipe, "--json", cwd=project, check=False)
    assert proc.returncode == 1
    problems = json.loads(proc.stdout)["problems"]
    assert any("darwin-arm64.txt: missing" in p for p in problems)
    assert any("linux-arm64.txt: unhashed: line 9: psutil==" in p for p in problems)
    assert any("linux-arm64.txt: edited: the pins differ" in p for p in problems)


def test_no_wheel_for_target_is_named(tmp_path: Path) -> None:
    recipe = tmp_path / "r"
    (recipe / "src" / "x").mkdir(parents=True)
    (recipe / "src" / "x" / "__init__.py").write_text("def main(): pass\n")
    (recipe / "recipe.toml").write_text(
        '[recipe]\nname = "x"\nversion = "1"\nentry = "x:main"\nsources = ["src"]\n'
        'requirements = ["numpy==1.24.0"]\n[targets]\nalpine-arm64 = {}\n'
    )
    proc = buildkit("lock", recipe, cwd=tmp_path, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "numpy 1.24.0 has no wheel for alpine-arm64" in proc.stderr
    assert not (recipe / "lockfiles").exists()


def test_pip_tools_engine_for_host(recipe_copy) -> None:
    recipe = recipe_copy("healthcheck")
    project = recipe.parents[1]
    host_py = f"{sys.version_info[0]}.{sys.version_info[1]}"
    toml = recipe / "recipe.toml"
    toml.write_text(toml.read_text().replace('python = "3.11"', f'python = "{host_py}"'))
    lock = project / "lockfiles" / "healthcheck" / "linux-amd64.txt"
    uv_pin = next(ln for ln in lock.read_text().splitlines() if ln.startswith("urllib3=="))
    buildkit("lock", recipe, "--target", "linux-amd64", "--engine", "pip-tools", cwd=project)
    text = lock.read_text()
    assert "# engine: pip-tools " in text
    assert uv_pin in text.splitlines()
    assert text.count("--hash=sha256:") >= 1  # binaries only: the wheel(s), not the sdist
    assert (
        buildkit("lock", "--check", recipe, "--target", "linux-amd64", cwd=project).returncode == 0
    )
    foreign = buildkit(
        "lock",
        recipe,
        "--target",
        "darwin-arm64",
        "--engine",
        "pip-tools",
        cwd=project,
        check=False,
    )
    assert foreign.returncode == 2 and "pip-tools cannot lock for darwin-arm64" in foreign.stderr


def test_tampered_cached_wheel_is_refused(recipe_copy, tmp_path: Path) -> None:
    recipe = recipe_copy("hostmetrics")
    project = recipe.parents[1]
    cache, dist = tmp_path / "cache", tmp_path / "dist"
    args = (
        "build",
        recipe,
        "--target",
        "linux-amd64",
        "--format",
        "pex",
        "--out",
        dist,
        "--cache-dir",
        cache,
    )
    buildkit(*args, cwd=project)
    art = dist / "hostmetrics-1.0.0-linux-amd64.pex"
    good = art.read_bytes()
    (wheel,) = (cache / "wheels").rglob("psutil-*.whl")
    wheel.write_bytes(wheel.read_bytes() + b"tampered")

    offline = buildkit(*args, "--offline", cwd=project, check=False)
    assert offline.returncode == 2
    assert f"refused cached wheel {wheel.name}" in offline.stderr
    assert (
        "--offline: no verified wheel for linux-amd64 in the cache for psutil==" in offline.stderr
    )
    assert art.read_bytes() == good

    wheel.parent.mkdir(parents=True, exist_ok=True)
    wheel.write_bytes(b"tampered again")
    online = buildkit(*args, cwd=project)
    assert f"refused cached wheel {wheel.name}" in online.stderr
    assert "fetching 1 wheel(s) for linux-amd64" in online.stderr
    assert art.read_bytes() == good
    assert buildkit(*args, "--offline", cwd=project).returncode == 0


def test_offline_with_empty_cache_names_what_is_missing(recipe_copy, tmp_path: Path) -> None:
    recipe = recipe_copy("healthcheck")
    proc = buildkit(
        "build",
        recipe,
        "--offline",
        "--target",
        "darwin-arm64",
        "--out",
        tmp_path / "d",
        "--cache-dir",
        tmp_path / "empty",
        cwd=recipe.parents[1],
        check=False,
    )
    assert proc.returncode == 2
    assert "no verified wheel for darwin-arm64 in the cache for urllib3==" in proc.stderr
    assert not (tmp_path / "d").exists()
