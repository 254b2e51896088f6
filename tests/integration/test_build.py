"""The sample recipes built for real with uv, pip, pex and shiv."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from packaging.utils import parse_wheel_filename

from buildkit import targets
from buildkit.checks import pythons
from buildkit.checks.run import python_bin
from buildkit.release import profiles
from tests.conftest import RECIPES, SAMPLES
from tests.integration.conftest import buildkit

pytestmark = pytest.mark.integration

TARGETS = list(targets.all_targets())


def artifacts(dist: Path, recipe: str) -> list[Path]:
    """The artifacts (not the per-target seccomp profiles beside them)."""
    return sorted(
        p
        for p in dist.iterdir()
        if p.name.startswith(f"{recipe}-1.0.0-") and not p.name.endswith(profiles.SUFFIXES)
    )


@pytest.mark.parametrize("recipe", SAMPLES)
def test_eight_artifacts_per_recipe(sample_dist: Path, recipe: str) -> None:
    names = {p.name for p in artifacts(sample_dist, recipe)}
    assert names == {f"{recipe}-1.0.0-{t}{s}" for t in TARGETS for s in (".pex", ".pyz")}


def test_sha256sum_check_passes(sample_dist: Path) -> None:
    proc = subprocess.run(
        ["sha256sum", "-c", "--strict", "SHA256SUMS"],
        cwd=sample_dist,
        capture_output=True,
        text=True,
        check=True,
    )
    # every artifact, manifest.json, each recipe's four hardening reports, SBOM and
    # provenance, and the seccomp profiles of each target whose checks ran here (two
    # files each; linux-amd64's always)
    profiles_here = [p for p in sample_dist.iterdir() if p.name.endswith(profiles.SUFFIXES)]
    for recipe in SAMPLES:
        for suffix in profiles.SUFFIXES:
            assert (sample_dist / f"{recipe}-1.0.0-linux-amd64{suffix}").is_file()
    assert proc.stdout.count(": OK") == 3 * 8 + 1 + 3 * 6 + len(profiles_here)
    for recipe in SAMPLES:
        for ext in ("json", "sarif", "md", "html"):
            assert f"{recipe}-1.0.0.hardening.{ext}: OK" in proc.stdout
        for name in (f"{recipe}-1.0.0.cdx.json", f"{recipe}-1.0.0.intoto.jsonl"):
            assert f"{name}: OK" in proc.stdout
    assert buildkit("verify", sample_dist).returncode == 0


def test_manifest_describes_each_artifact(sample_dist: Path) -> None:
    doc = json.loads((sample_dist / "manifest.json").read_text())
    by_name = {a["name"]: a for a in doc["artifacts"]}
    assert len(by_name) == 24
    entry = by_name["hostmetrics-1.0.0-alpine-arm64.pyz"]
    assert entry["target"] == "alpine-arm64" and entry["format"] == "shiv"
    assert entry["python"] == "3.12"
    assert entry["size"] == (sample_dist / entry["name"]).stat().st_size
    assert entry["lock"] == "lockfiles/hostmetrics/alpine-arm64.txt"
    assert entry["lock_digest"].startswith("sha256:")
    assert any("musllinux_1_2_aarch64" in w for w in entry["inputs"]["wheels"])


def test_every_artifact_carries_its_checks(sample_dist: Path) -> None:
    """linux-amd64 zipapps ran their recipe's checks here, with a clean Python of their
    version alone on PATH (pex: also under later ones when every wheel allows it); the
    others say why they did not run here (this session's cache has no emulated host)."""
    doc = json.loads((sample_dist / "manifest.json").read_text())
    for entry in doc["artifacts"]:
        checks, name = entry["checks"], entry["name"]
        if entry["target"] == "linux-amd64":
            assert checks["status"] == "passed", (name, checks)
            wheres = [r["where"] for r in checks["runs"]]
            assert wheres[0].startswith("this machine (linux x86_64") and "Python 3.11" in wheres[0]
            if entry["format"] == "pex":  # every sample's wheels are pure or abi3
                assert any("Python 3.12" in w for w in wheres), wheres
            else:
                assert len(wheres) == 1
            for run in checks["runs"]:
                assert all(r["passed"] for r in run["results"])
                assert len(run["results"]) >= 2
        elif entry["target"] == "darwin-arm64":
            assert checks["status"] == "not-run"
            assert "no darwin-arm64 host here" in checks["not_run"]
            assert "static checks" in checks["not_run"]
        else:
            assert checks["status"] == "not-run"
            assert f"buildkit host create {entry['target']}" in checks["not_run"]
    statement = json.loads((sample_dist / "portcheck-1.0.0.intoto.jsonl").read_text())
    byproducts = statement["predicate"]["runDetails"]["byproducts"]
    assert {b["name"] for b in byproducts} == {
        f"checks/portcheck-1.0.0-{t}{s}" for t in TARGETS for s in (".pex", ".pyz")
    }


def test_a_failing_check_fails_the_build_and_changes_nothing(
    recipe_copy, tmp_path: Path, cache_dir: Path, sample_dist: Path
) -> None:
    recipe = recipe_copy("healthcheck")
    toml = recipe / "recipe.toml"
    toml.write_text(toml.read_text().replace('stdout = "UNHEALTHY"', 'stdout = "DOWN"'))
    out = tmp_path / "dist"
    shutil.copytree(sample_dist, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    proc = buildkit(
        "build", recipe, "--target", "linux-amd64", "--format", "shiv",
        "--out", out, "--cache-dir", cache_dir, check=False,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "healthcheck-1.0.0-linux-amd64.pyz: check 'unhealthy'" in proc.stderr
    assert "expected: exit 1, stdout containing 'DOWN'" in proc.stderr
    assert "UNHEALTHY http://127.0.0.1:" in proc.stderr  # what the program printed
    assert "nothing was published" in proc.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_an_open_ended_pex_refuses_an_older_python_in_one_line(
    sample_dist: Path, tmp_path: Path
) -> None:
    """portcheck's pex runs on 3.11 and later (its checks ran there); pex's boot takes a
    python3.10 when that is all there is, and the app says what it needs."""
    older = pythons.find("3.10")
    if older is None:
        pytest.skip("no python3.10 on this machine")
    env = {"PATH": str(python_bin(older, tmp_path / "bin")), "HOME": str(tmp_path)}
    proc = subprocess.run(
        [sample_dist / "portcheck-1.0.0-linux-amd64.pex", "127.0.0.1:9"],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.splitlines()  # one line, no traceback
    assert line.startswith(
        "portcheck-1.0.0-linux-amd64.pex: needs Python 3.11 or newer (python3.11 on PATH); "
        "it was started by Python 3.10 ("
    ), line


def test_inspect_without_running(sample_dist: Path) -> None:
    art = sample_dist / "healthcheck-1.0.0-darwin-arm64.pex"
    info = json.loads(buildkit("inspect", art, "--json").stdout)
    assert (info["recipe"], info["target"], info["format"]) == (
        "healthcheck",
        "darwin-arm64",
        "pex",
    )
    assert info["tools"]["pex"]
    text = buildkit("inspect", art).stdout
    assert "darwin-arm64" in text and "lock_digest" in text


# --- what is inside foreign artifacts ----------------------------------------------------

EXPECTED_PLATFORM = {  # wheel platform family and the machine code inside, per target
    "linux-amd64": ("manylinux", "x86_64", "elf", 62),
    "linux-arm64": ("manylinux", "aarch64", "elf", 183),
    "alpine-arm64": ("musllinux", "aarch64", "elf", 183),
    "darwin-arm64": ("macosx", "arm64", "macho", 0x0100000C),
}


def wheel_tags_inside(art: Path) -> dict[str, set[str]]:
    """Wheel tags of every distribution packed in a pex (.deps/) or shiv (dist-info/WHEEL)."""
    found: dict[str, set[str]] = {}
    with zipfile.ZipFile(art) as zf:
        for name in zf.namelist():
            parts = name.split("/")
            if parts[0] == ".deps" and len(parts) > 2 and parts[1].endswith(".whl"):
                dist, _, _, tags = parse_wheel_filename(parts[1])
                found[str(dist)] = {str(t) for t in tags}
            if name.endswith(".dist-info/WHEEL"):
                dist = parts[-2].split("-")[0]
                lines = zf.read(name).decode().splitlines()
                found[dist.lower()] = {
                    ln.split(": ", 1)[1] for ln in lines if ln.startswith("Tag: ")
                }
    return found


def native_machines(art: Path) -> set[tuple[str, int]]:
    out = set()
    with zipfile.ZipFile(art) as zf:
        for name in zf.namelist():
            if name.endswith(".so"):
                head = zf.read(name)[:20]
                if head[:4] == b"\x7fELF":
                    out.add(("elf", int.from_bytes(head[18:20], "little")))
                elif head[:4] == b"\xcf\xfa\xed\xfe":
                    out.add(("macho", int.from_bytes(head[4:8], "little")))
                else:
                    out.add(("unknown", 0))
    return out


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("suffix", [".pex", ".pyz"])
def test_wheels_fit_target(sample_dist: Path, target: str, suffix: str) -> None:
    family, arch, kind, machine = EXPECTED_PLATFORM[target]
    for recipe, dist in (("hostmetrics", "psutil"), ("healthcheck", "urllib3")):
        art = sample_dist / f"{recipe}-1.0.0-{target}{suffix}"
        tags = wheel_tags_inside(art)
        assert set(tags) == {dist}, tags
        accepted = {
            str(t) for t in targets.get(target).wheel_tags("3.12" if "alpine" in target else "3.11")
        }
        assert tags[dist] & accepted, (art.name, tags[dist])
        if dist == "psutil":  # the native one: platform tags and machine code must fit
            assert all(family in t and arch in t for t in tags[dist]), tags[dist]
            assert native_machines(art) == {(kind, machine)}
    assert wheel_tags_inside(sample_dist / f"portcheck-1.0.0-{target}{suffix}") == {}


# --- the linux-amd64 artifacts behave as the scripts do ----------------------------------

HOST = "linux-amd64"


def run(art: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(art), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def check_portcheck(art: Path, env: dict[str, str], ports: tuple[int, int]) -> None:
    listening, closed = ports
    ok = run(art, env, f"127.0.0.1:{listening}")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("open ")
    bad = run(art, env, f"127.0.0.1:{listening}", f"127.0.0.1:{closed}", "--json")
    assert bad.returncode == 1
    assert [r["open"] for r in json.loads(bad.stdout)] == [True, False]
    assert run(art, env, "not-a-target").returncode == 2


def check_hostmetrics(art: Path, env: dict[str, str]) -> None:
    ok = run(art, env, "--json", "--interval", "0")
    assert ok.returncode == 0, ok.stderr
    doc = json.loads(ok.stdout)
    assert doc["cpu_count"] >= 1 and doc["disks"][0]["path"] == "/"
    over = run(art, env, "--max-disk", "0", "--interval", "0")
    assert over.returncode == 1 and "OVER    disk /" in over.stdout


@pytest.mark.parametrize("suffix", [".pex", ".pyz"])
def test_portcheck_runs(
    sample_dist: Path, run_env: dict[str, str], ports: tuple[int, int], suffix: str
) -> None:
    check_portcheck(sample_dist / f"portcheck-1.0.0-{HOST}{suffix}", run_env, ports)


class _Health(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        status = 200 if self.path == "/healthz" else 500
        body = b"ok\n"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("suffix", [".pex", ".pyz"])
def test_healthcheck_runs(sample_dist: Path, run_env: dict[str, str], suffix: str) -> None:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{srv.server_address[1]}"
    try:
        art = sample_dist / f"healthcheck-1.0.0-{HOST}{suffix}"
        ok = run(art, run_env, f"{base}/healthz", "--contains", "ok")
        assert ok.returncode == 0, ok.stderr
        assert ok.stdout.startswith("healthy")
        bad = run(art, run_env, f"{base}/healthz", f"{base}/broken", "--json")
        assert bad.returncode == 1
        assert [r["status"] for r in json.loads(bad.stdout)] == [200, 500]
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.mark.parametrize("suffix", [".pex", ".pyz"])
def test_hostmetrics_runs(sample_dist: Path, run_env: dict[str, str], suffix: str) -> None:
    check_hostmetrics(sample_dist / f"hostmetrics-1.0.0-{HOST}{suffix}", run_env)


# --- reproducible and cached -------------------------------------------------------------


def test_rebuild_is_byte_identical(sample_dist: Path, tmp_path: Path) -> None:
    """A second build from a fresh cache, another output folder, cwd, TZ and umask."""
    out = tmp_path / "elsewhere" / "dist"
    env = {"TZ": "Pacific/Kiritimati", "LC_ALL": "C", "SOME_NOISE": "1"}
    proc = subprocess.run(
        [
            "sh",
            "-c",
            'umask 0002 && exec "$@"',
            "sh",
            sys.executable,
            "-m",
            "buildkit",
            "build",
            str(RECIPES / "hostmetrics"),
            "--format",
            "pex",
            "--format",
            "shiv",
            "--out",
            str(out),
            "--cache-dir",
            str(tmp_path / "fresh-cache"),
        ],
        cwd=tmp_path,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    for art in artifacts(out, "hostmetrics"):
        assert art.read_bytes() == (sample_dist / art.name).read_bytes(), art.name


def test_unchanged_rebuild_reuses(sample_dist: Path, cache_dir: Path) -> None:
    proc = buildkit(
        "build",
        RECIPES / "portcheck",
        "--format",
        "pex",
        "--format",
        "shiv",
        "--out",
        sample_dist,
        "--cache-dir",
        cache_dir,
        "--json",
    )
    doc = json.loads(proc.stdout)
    assert len(doc["artifacts"]) == 8
    assert all(a["reused"] for a in doc["artifacts"])
    subprocess.run(
        ["sha256sum", "-c", "SHA256SUMS"], cwd=sample_dist, check=True, capture_output=True
    )
