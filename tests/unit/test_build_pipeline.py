"""The whole build, in this process, with a fake native backend: plan, lock check, the
recipe's sources, the cache, the recipe's checks, the gate and the release folder,
without starting any program (the unit tier's guard would fail the test if one started):
the checks call portcheck's own ``main`` in this process, against the real fixtures. The
real backends, and checks that start the real artifacts, are tested in tests/integration."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from buildkit import build as build_module
from buildkit.backends import BuildJob, Output
from buildkit.backends.nuitka import NuitkaBackend
from buildkit.backends.pex import PexBackend
from buildkit.backends.shiv import ShivBackend
from buildkit.build import build
from buildkit.cache import Cache
from buildkit.checks import run as checks_run
from buildkit.checks.model import Check
from buildkit.cli.common import load_recipe
from buildkit.errors import CheckFailed, RecipeError
from buildkit.release.publish import listing_problems
from buildkit.release.stage import GateFailed
from buildkit.targets import Target
from tests.conftest import RECIPES, with_hardening

HOST = "linux-amd64"


class FakeNative(NuitkaBackend):
    """Nuitka's options, refusals and settings; a copy of Debian's ls as the binary."""

    def tool_versions(self, target: Target) -> dict[str, str]:
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


@dataclass(frozen=True)
class InProcess:
    """A check place that calls portcheck's ``main`` here instead of starting a program."""

    where: str = "this process (portcheck.cli.main)"
    recorder: str = ""  # no system calls recorded in this process

    def inside(self, folder: Path) -> str:
        return str(folder)

    def run(
        self,
        program: Path,
        args: Sequence[str],
        check: Check,
        folder: Path,
        *,
        stdin: Path | None,
        streams: tuple[Path, Path],
        calls: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        from portcheck.cli import main  # type: ignore[import-not-found]

        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 2
        streams[0].write_text(out.getvalue())
        streams[1].write_text(err.getvalue())
        return subprocess.CompletedProcess([str(program), *args], code)


@pytest.fixture(autouse=True)
def in_process_checks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.syspath_prepend(str(RECIPES / "portcheck" / "src"))
    monkeypatch.setattr(checks_run, "places", lambda record, cache, work, seen: ([InProcess()], ""))
    yield
    for name in [m for m in sys.modules if m.split(".")[0] == "portcheck"]:
        del sys.modules[name]


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
    toml.write_text(
        with_hardening(toml.read_text(), f"[hardening]\nrequire = {json.dumps(require)}")
    )


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
    assert entry["checks"]["status"] == "passed"
    (run,) = entry["checks"]["runs"]
    assert [r["check"] for r in run["results"]] == ["open port", "closed port", "json"]
    assert result.checks[artifact.name].status == "passed"
    assert listing_problems(out) == []
    assert len(list((tmp_path / "cache").glob("blobs/*/*"))) == 1  # the artifact
    assert not result.checks[artifact.name].reused
    manifest_text = (out / "manifest.json").read_text()
    assert "{port}" in manifest_text and "seconds" not in manifest_text
    again = _build(recipe, out, tmp_path / "cache")
    assert again.artifacts[0].sha256 == artifact.sha256
    # the same bytes passed the same checks here: the outcomes are kept, not run again
    proof = again.checks[artifact.name]
    assert proof.reused and proof.status == "passed"
    assert [o.check for o in proof.runs[0].outcomes] == ["open port", "closed port", "json"]
    # and the release records the same outcome, byte for byte (no timings, no ports)
    assert (out / "manifest.json").read_text() == manifest_text


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


def test_a_build_that_fails_its_checks_publishes_nothing(recipe_copy, tmp_path: Path) -> None:
    recipe = recipe_copy("portcheck")
    toml = recipe / "recipe.toml"
    toml.write_text(toml.read_text().replace('stdout = "closed"', 'stdout = "shut"'))
    out = tmp_path / "dist"
    out.mkdir()
    (out / "kept.txt").write_text("was here\n")
    with pytest.raises(checks_run.ChecksFailed) as exc:
        _build(recipe, out, tmp_path / "cache")
    assert exc.value.exit_code == 1
    message = exc.value.message
    assert f"portcheck-1.0.0-{HOST}: check 'closed port'" in message
    assert "expected: exit 1, stdout containing 'shut'" in message
    assert "got:      stdout does not contain 'shut'" in message
    assert "closed 127.0.0.1:" in message  # what the program said
    # where the rejected artifact is, to run and inspect it by hand
    kept = re.search(rf"portcheck-1\.0\.0-{HOST}: rejected; kept at (\S+) \(copy it", message)
    assert kept is not None, message
    assert Path(kept.group(1)).is_file()
    assert Path(kept.group(1)).is_relative_to(tmp_path / "cache")
    assert [p.name for p in out.iterdir()] == ["kept.txt"]
    results = exc.value.results[f"portcheck-1.0.0-{HOST}"]
    assert [o.passed for r in results.runs for o in r.outcomes] == [True, False, True]


def test_an_entry_typo_stops_the_build_before_anything_is_built(
    recipe_copy, tmp_path: Path
) -> None:
    recipe = recipe_copy("portcheck")
    toml = recipe / "recipe.toml"
    toml.write_text(toml.read_text().replace('"portcheck.cli:main"', '"portcheck.cli:mian"'))
    with pytest.raises(RecipeError, match=r"has no 'mian'; did you mean 'main'\?") as exc:
        _build(recipe, tmp_path / "dist", tmp_path / "cache")
    assert exc.value.exit_code == 2
    assert not (tmp_path / "dist").exists()
    assert not list((tmp_path / "cache").glob("blobs/*/*"))  # nothing was built


def test_changed_checks_run_again(recipe_copy, tmp_path: Path) -> None:
    recipe = recipe_copy("portcheck")
    _policy(recipe, ["nx", "pie"])
    first = _build(recipe, tmp_path / "dist", tmp_path / "cache")
    toml = recipe / "recipe.toml"
    toml.write_text(toml.read_text().replace('"--timeout", "5"]', '"--timeout", "4"]'))
    again = _build(recipe, tmp_path / "dist", tmp_path / "cache")
    (name,) = again.checks
    assert again.artifacts[0].sha256 == first.artifacts[0].sha256  # the same bytes
    assert first.checks[name].reused is False and again.checks[name].reused is False
    assert first.checks[name].runs[0].outcomes[0].command[-1] == "5"
    assert again.checks[name].runs[0].outcomes[0].command[-1] == "4"
