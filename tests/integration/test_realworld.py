"""Real ops CLIs from PyPI as recipes (tests/realworld): awscli 1.46 and glances 4.5.

Their zipapps are built here and must pass their recipes' checks, which do real work
offline (awscli answers from its bundled models and fails as it fails without
credentials; glances reports this machine's CPU and memory). Their Nuitka binaries and
arm64 zipapps take long: ``ci/realworld`` builds every target and format, and the README
has its figures.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.integration.conftest import buildkit

pytestmark = pytest.mark.integration

REALWORLD = ROOT / "tests" / "realworld"
CHECKS = {
    "awscli": ["version", "help of a command", "no credentials"],
    "glances": ["version", "stdout", "stdout-json"],
}


@pytest.fixture(scope="module")
def realworld_dist(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Path:
    dist = tmp_path_factory.mktemp("realworld")
    for name in CHECKS:
        buildkit("build", REALWORLD / name, "--target", "linux-amd64", "--format", "pex",
                 "--format", "shiv", "--out", dist, "--cache-dir", cache_dir)  # fmt: skip
    return dist


@pytest.mark.parametrize("recipe", list(CHECKS))
def test_real_clis_pass_their_checks_in_every_zipapp(realworld_dist: Path, recipe: str) -> None:
    """Including glances' shiv zipapp: ``glances:main`` is the function (console-script
    semantics), not the submodule glances.main that shiv's own bootstrap would call."""
    doc = json.loads((realworld_dist / "manifest.json").read_text())
    entries = [a for a in doc["artifacts"] if a["recipe"] == recipe]
    assert {a["format"] for a in entries} == {"pex", "shiv"}
    for entry in entries:
        assert entry["checks"]["status"] == "passed", entry["checks"]
        for run in entry["checks"]["runs"]:
            assert [r["check"] for r in run["results"]] == CHECKS[recipe]
            assert all(r["passed"] for r in run["results"])
    assert buildkit("verify", realworld_dist).returncode == 0


def test_an_entry_typo_in_a_wheel_stops_before_building(tmp_path: Path, cache_dir: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(REALWORLD / "awscli", project / "recipes" / "awscli")
    shutil.copytree(ROOT / "lockfiles" / "awscli", project / "lockfiles" / "awscli")
    toml = project / "recipes" / "awscli" / "recipe.toml"
    toml.write_text(toml.read_text().replace("awscli.clidriver:main", "awscli.clidriver:mian"))
    out = tmp_path / "dist"
    proc = buildkit("build", toml.parent, "--target", "linux-amd64", "--format", "shiv",
                    "--out", out, "--cache-dir", cache_dir, check=False)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "[recipe].entry: 'awscli.clidriver:mian': awscli.clidriver" in proc.stderr
    assert "awscli/clidriver.py in awscli-1.46." in proc.stderr
    assert "has no 'mian'; did you mean 'main'?" in proc.stderr
    assert "built" not in proc.stderr.replace("buildkit", "") and not out.exists()
