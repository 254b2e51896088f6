"""A recipe's native package: logwatch's C scanner compiled here with the hardening flags,
in all three formats for linux-amd64, running, and audited as our own code; other
targets take the wheel from a wheelhouse or are skipped with the cibuildwheel identifier."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from buildkit.checks import pythons
from buildkit.checks.run import python_bin
from tests.conftest import RECIPES
from tests.integration.conftest import buildkit

pytestmark = pytest.mark.integration

LOG = b"INFO start\nERROR disk full\nWARN slow\nERROR disk full\n"


@pytest.fixture(scope="module")
def logwatch(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("logwatch") / "dist"
    proc = buildkit("build", RECIPES / "logwatch", "--out", out, "--cache-dir", cache_dir,
                    "--json")  # fmt: skip
    return {**json.loads(proc.stdout), "out": out}


def test_three_formats_run_with_the_extension(logwatch: dict[str, Any], tmp_path: Path) -> None:
    built = {a["format"]: Path(a["path"]) for a in logwatch["artifacts"]}
    assert set(built) == {"pex", "shiv", "nuitka"}
    assert {a["target"] for a in logwatch["artifacts"]} == {"linux-amd64"}
    log = tmp_path / "app.log"
    log.write_bytes(LOG)
    env = {**os.environ, "HOME": str(tmp_path / "home"), "XDG_CACHE_HOME": str(tmp_path / "x"),
           "PEX_ROOT": str(tmp_path / "pex"), "SHIV_ROOT": str(tmp_path / "shiv")}  # fmt: skip
    outputs = set()
    for fmt, artifact in built.items():
        proc = subprocess.run([artifact, log, "--pattern", "ERROR", "--threshold", "2", "--json"],
                              capture_output=True, text=True, env=env, check=False)  # fmt: skip
        assert proc.returncode == 1, f"{fmt}: {proc.stderr}"
        doc = json.loads(proc.stdout)
        assert (doc["alert"], doc["lines"], doc["matching"]) == (True, 4, 2)
        outputs.add(proc.stdout.replace(str(log), "LOG"))
    assert len(outputs) == 1  # every format says the same


def test_a_zipapp_started_by_another_python_says_which_it_needs(
    logwatch: dict[str, Any], tmp_path: Path
) -> None:
    """logwatch's own extension is built for CPython 3.11's ABI: its zipapps refuse 3.12
    in one line, before the program imports anything (and its checks ran under 3.11
    only)."""
    newer = pythons.find("3.12")
    if newer is None:
        pytest.skip("no python3.12 on this machine")
    built = {a["format"]: Path(a["path"]) for a in logwatch["artifacts"]}
    only_312 = python_bin(newer, tmp_path / "bin")
    env = {"PATH": str(only_312), "HOME": str(tmp_path / "home"), "LC_ALL": "C.UTF-8"}
    log = tmp_path / "app.log"
    log.write_bytes(LOG)
    for fmt, command, says in (
        ("pex", [built["pex"]], "needs Python 3.11 (python3.11 on PATH); this host has: "
         "Python 3.12"),
        ("shiv", [built["shiv"]], "needs Python 3.11 (python3.11 on PATH); this host has: "
         "Python 3.12"),
        ("shiv", [newer, "-I", built["shiv"]], "needs Python 3.11 (python3.11 on PATH); it "
         "was started by Python 3.12"),
    ):  # fmt: skip
        proc = subprocess.run([*command, log, "--pattern", "ERROR"], capture_output=True,
                              text=True, env=env, check=False)  # fmt: skip
        assert proc.returncode == 2, (fmt, proc.stderr)
        assert says in proc.stderr, (fmt, proc.stderr)
        assert "Traceback" not in proc.stderr and proc.stdout == ""
    manifest = json.loads((logwatch["out"] / "manifest.json").read_text())
    (pex,) = [a for a in manifest["artifacts"] if a["format"] == "pex"]
    assert [r["where"].split(" with ")[1][:11] for r in pex["checks"]["runs"]] == ["Python 3.11"]


def test_extension_is_hardened_and_audited_as_our_own(logwatch: dict[str, Any]) -> None:
    report = json.loads((logwatch["out"] / "logwatch-1.0.0.hardening.json").read_text())
    scanners = [f for f in report["files"] if "logscan" in f["path"] and "_scan" in f["path"]]
    assert {f["artifact"].rsplit("-", 1)[-1] for f in scanners} == {
        "amd64.pex", "amd64.pyz", "amd64"
    }  # fmt: skip
    for f in scanners:
        assert f["component"] == "own", f
        assert "native package logscan 1.0.0" in f["origin"]
        for check in ("relro", "canary", "nx", "fortify", "rpath"):
            assert f["checks"][check]["state"] == "pass", (f["path"], check, f["checks"][check])
    verdicts = report["policy"]["verdicts"]
    assert any("logscan" in v["path"] and v["requirement"] == "fortify" for v in verdicts)
    assert report["policy"]["passed"] is True
    sbom = json.loads((logwatch["out"] / "logwatch-1.0.0.cdx.json").read_text())
    (logscan,) = [c for c in sbom["components"] if c["name"] == "logscan"]
    assert logscan["purl"] == "pkg:generic/logscan@1.0.0"  # ours, not a PyPI package
    manifest = json.loads((logwatch["out"] / "manifest.json").read_text())
    for entry in manifest["artifacts"]:
        assert entry["inputs"]["native"] == ["logscan"]
        assert any(w.startswith("logscan-1.0.0-cp311-cp311-manylinux_") for w in
                   entry["inputs"]["wheels"])  # fmt: skip


def test_other_targets_need_a_wheelhouse(logwatch: dict[str, Any]) -> None:
    skipped = {(s["target"], s["format"]): s["reason"] for s in logwatch["skipped"]}
    reason = skipped[("alpine-arm64", "pex")]
    assert "logscan 1.0.0 has a C extension" in reason
    assert "cp312-musllinux_aarch64" in reason and "--wheelhouse" in reason
    asked = buildkit("build", RECIPES / "logwatch", "--target", "linux-arm64", "--format",
                     "pex", "--out", logwatch["out"].parent / "refused", check=False)  # fmt: skip
    assert asked.returncode == 2 and "cp311-manylinux_aarch64" in asked.stderr


def test_a_wheelhouse_wheel_is_used_for_its_target(
    logwatch: dict[str, Any], tmp_path: Path, cache_dir: Path
) -> None:
    """The selection and recording of a wheelhouse wheel. The wheel is the one compiled
    here, retagged for linux-arm64: its code is x86-64 (cibuildwheel makes real ones in
    CI), so the artifact is checked, not run."""
    pex = next(Path(a["path"]) for a in logwatch["artifacts"] if a["format"] == "pex")
    with zipfile.ZipFile(pex) as zf:
        name = next(n for n in zf.namelist() if n.startswith(".deps/logscan-")).split("/")[1]
    house = tmp_path / "wheelhouse"
    house.mkdir()
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(pex) as zf:
        members = [n for n in zf.namelist() if n.startswith(f".deps/{name}/")]
        zf.extractall(unpacked, members)
    built = subprocess.run([sys.executable, "-m", "wheel", "pack", "--dest-dir", tmp_path,
                            unpacked / ".deps" / name], capture_output=True, text=True,
                           check=True)  # fmt: skip
    wheel = next(tmp_path.glob("logscan-*.whl"))
    subprocess.run([sys.executable, "-m", "wheel", "tags", "--platform-tag",
                    "manylinux_2_17_aarch64", "--remove", wheel], cwd=tmp_path,
                   check=True, capture_output=True)  # fmt: skip
    (retagged,) = tmp_path.glob("logscan-*aarch64.whl")
    shutil.move(retagged, house / retagged.name)
    out = tmp_path / "arm"
    proc = buildkit("build", RECIPES / "logwatch", "--target", "linux-arm64", "--format", "pex",
                    "--out", out, "--cache-dir", cache_dir, "--wheelhouse", house,
                    "--json")  # fmt: skip
    (artifact,) = json.loads(proc.stdout)["artifacts"]
    manifest = json.loads((out / "manifest.json").read_text())["artifacts"][0]
    assert f"{retagged.name} sha256:" in " ".join(manifest["inputs"]["wheels"])
    with zipfile.ZipFile(artifact["path"]) as zf:
        assert any(n.startswith(f".deps/{retagged.name}/") for n in zf.namelist())
    assert built.returncode == 0
