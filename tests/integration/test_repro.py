"""`buildkit repro`: the samples rebuild byte for byte under varied conditions, and an
injected difference is caught and explained by diffoscope."""

from __future__ import annotations

import json
import os
import shutil
import tomllib
from pathlib import Path

import pytest

from tests.conftest import RECIPES, SAMPLES
from tests.integration.conftest import buildkit

pytestmark = pytest.mark.integration

TARGETS = ("linux-amd64", "darwin-arm64", "alpine-arm64", "linux-arm64")


@pytest.mark.parametrize("recipe", SAMPLES)
def test_samples_are_reproducible(recipe: str, tmp_path: Path, cache_dir: Path) -> None:
    out = tmp_path / "repro"
    proc = buildkit("repro", RECIPES / recipe, "--out", out, "--cache-dir", cache_dir, "--json")
    doc = json.loads(proc.stdout)
    assert doc["identical"] is True
    assert doc == json.loads((out / "repro.json").read_text())
    names = {f["name"] for f in doc["files"]}
    v = "1.0.0"
    want = {f"{recipe}-{v}-{t}{s}" for t in TARGETS for s in (".pex", ".pyz")}
    want |= {f"{recipe}-{v}-linux-amd64", "SHA256SUMS", "manifest.json"}
    want |= {f"{recipe}-{v}.{x}" for x in ("cdx.json", "intoto.jsonl", "hardening.json")}
    assert want <= names
    for f in doc["files"]:
        assert f["same"] and len(set(f["sha256"])) == 1 and f["diffoscope"] is None
    varied = {c["name"]: c["values"] for c in doc["conditions"]}
    for name in ("recipe path", "output path", "working directory", "TZ", "umask", "HOME",
                 "locale (LC_ALL)", "PYTHONHASHSEED", "environment noise"):  # fmt: skip
        assert len(set(varied[name])) == 2, name
    # not under another Python: a .pex names the interpreter that ran pex (the Nuitka
    # binary alone is rebuilt under 3.12 in test_nuitka.py); and without a host C
    # compiler unless the recipe has its own C package (logwatch): the binary is zig's
    notes = {c["name"]: c["note"] for c in doc["conditions"]}
    assert len(set(varied["Python running buildkit"])) == 1
    assert "pex" in notes["Python running buildkit"]
    native = "native" in tomllib.loads((RECIPES / recipe / "recipe.toml").read_text())["recipe"]
    compilers = varied["host C compilers"]
    if os.geteuid() == 0 and shutil.which("gcc") and not native:
        assert compilers == ["present", "hidden (bound to false)"], compilers
    else:
        assert compilers == ["present", "present"], compilers
    assert not list(out.glob("*.diffoscope.txt"))


def test_an_injected_difference_is_caught_and_explained(tmp_path: Path, cache_dir: Path) -> None:
    out = tmp_path / "repro"
    proc = buildkit("repro", RECIPES / "healthcheck", "--target", "linux-amd64",
                    "--format", "pex", "--format", "shiv", "--out", out,
                    "--cache-dir", cache_dir, "--perturb", "src/healthcheck/cli.py",
                    check=False)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "not reproducible" in proc.stderr
    for artifact in ("healthcheck-1.0.0-linux-amd64.pex", "healthcheck-1.0.0-linux-amd64.pyz"):
        assert f"DIFFERS {artifact}" in proc.stdout
        report = (out / f"{artifact}.diffoscope.txt").read_text()
        # diffoscope names the differing archive member and shows the injected line
        assert "── healthcheck/cli.py" in report or "── site-packages/healthcheck/cli.py" in report
        assert "changed in build 2 by buildkit repro --perturb" in report
    doc = json.loads((out / "repro.json").read_text())
    assert doc["identical"] is False
    same = {f["name"] for f in doc["files"] if f["same"]}
    assert "healthcheck-1.0.0.hardening.json" in same  # what did not change is still shown
