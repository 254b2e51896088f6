"""The whole build, in this process, with a fake native backend: plan, lock check, the
recipe's sources, the cache, the gate and the release folder, without starting any
program (the unit tier's guard would fail the test if one started). The real backends
are tested in tests/integration."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from buildkit import build as build_module
from buildkit.backends import BuildJob, Output
from buildkit.backends.nuitka import NuitkaBackend
from buildkit.backends.pex import PexBackend
from buildkit.backends.shiv import ShivBackend
from buildkit.build import build
from buildkit.cache import Cache
from buildkit.cli.common import load_recipe
from buildkit.errors import CheckFailed
from buildkit.release.publish import listing_problems
from buildkit.release.stage import GateFailed

HOST = "linux-amd64"


class FakeNative(NuitkaBackend):
    """Nuitka's options, refusals and settings; a copy of Debian's ls as the binary."""

    def tool_versions(self) -> dict[str, str]:
        return {"nuitka": "0-fake", "gcc": "0-fake"}

    def build(self, job: BuildJob, work: Path) -> Output:
        out = work / job.name
        shutil.copyfile("/usr/bin/ls", out)
        return Output(artifact=out)


@pytest.fixture(autouse=True)
def fake_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    backends = {b.name: b for b in (PexBackend(), ShivBackend(), FakeNative())}
    monkeypatch.setattr(build_module, "registry", lambda: backends)
    monkeypatch.setattr("buildkit.backends.registry", lambda: backends)


def _build(recipe: Path, out: Path, cache: Path) -> build_module.BuildResult:
    return build(
        load_recipe(recipe),
        want_targets=[HOST],
        want_formats=["nuitka"],
        out=out,
        cache=Cache(root=cache),
    )


def _policy(recipe: Path, require: list[str]) -> None:
    toml = recipe / "recipe.toml"
    toml.write_text(toml.read_text() + f"\n[hardening]\nrequire = {json.dumps(require)}\n")


def test_a_build_that_passes_its_gate_publishes_a_whole_release(
    recipe_copy, tmp_path: Path
) -> None:
    recipe = recipe_copy("portcheck")
    _policy(recipe, ["nx", "pie"])
    out = tmp_path / "dist"
    result = _build(recipe, out, tmp_path / "cache")
    (artifact,) = result.artifacts
    assert (artifact.name, artifact.format, artifact.reused) == (
        f"portcheck-1.0.0-{HOST}",
        "nuitka",
        False,
    )
    assert result.gate.passed and len(result.reports) == 4
    doc = json.loads((out / "manifest.json").read_text())
    (entry,) = doc["artifacts"]
    assert entry["inputs"]["tools"] == {"nuitka": "0-fake", "gcc": "0-fake"}
    assert entry["sha256"] == artifact.sha256
    assert listing_problems(out) == []
    again = _build(recipe, out, tmp_path / "cache")
    assert again.artifacts[0].sha256 == artifact.sha256


def test_a_build_that_fails_its_gate_publishes_nothing(recipe_copy, tmp_path: Path) -> None:
    recipe = recipe_copy("portcheck")
    _policy(recipe, ["relro-full"])  # Debian's ls has partial RELRO
    out = tmp_path / "dist"
    with pytest.raises(GateFailed, match=f"portcheck-1.0.0-{HOST}: relro") as exc:
        _build(recipe, out, tmp_path / "cache")
    assert isinstance(exc.value, CheckFailed) and exc.value.exit_code == 1
    assert sorted(p.name for p in out.iterdir()) == [
        f"portcheck-1.0.0.rejected.hardening.{ext}" for ext in ("html", "json", "md", "sarif")
    ]


def test_a_stale_lock_stops_the_build_before_anything_is_built(recipe_copy, tmp_path: Path) -> None:
    recipe = recipe_copy("portcheck")
    toml = recipe / "recipe.toml"
    toml.write_text(toml.read_text().replace("requirements = []", 'requirements = ["rich"]'))
    with pytest.raises(CheckFailed, match="lock check failed") as exc:
        _build(recipe, tmp_path / "dist", tmp_path / "cache")
    assert "buildkit lock" in (exc.value.hint or "")
    assert not (tmp_path / "dist").exists()
