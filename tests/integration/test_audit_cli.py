"""`buildkit audit` on real artifacts: every native file with its component, Mach-O in
the darwin zipapps, exit codes, SARIF valid against the SARIF 2.1.0 schema, and the HTML
report rendered by headless Chromium."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
import urllib.request
from pathlib import Path

import jsonschema
import pytest

from buildkit.targets import all_targets
from tests.integration.conftest import buildkit

pytestmark = pytest.mark.integration
TARGETS = tuple(all_targets())

# The SARIF 2.1.0 JSON schema as Microsoft publishes it on npm (package @microsoft/jest-sarif).
SARIF_SCHEMA_TGZ = "https://registry.npmjs.org/@microsoft/jest-sarif/-/jest-sarif-1.0.0-beta.0.tgz"
SARIF_SCHEMA_SHA256 = "748e2c3d1a842e7bb258416685c7ea3a0da40005b72267b2052c2856d48ad102"
SARIF_SCHEMA_MEMBER = "package/lib/schemas/sarif-2.1.0-rtm.5.json"

POLICY = """
[hardening]
require = ["nx", "stripped"]
scope = "all"
[[hardening.waivers]]
path = "psutil/*.so"
checks = ["stripped"]
reason = "psutil ships its symbol table"
expires = 2099-12-31
"""


@pytest.fixture(scope="session")
def sarif_schema(cache_dir: Path) -> dict[str, object]:
    path = cache_dir / "test-data" / "sarif-2.1.0.json"
    if not path.exists():
        with urllib.request.urlopen(SARIF_SCHEMA_TGZ, timeout=60) as response:
            data = response.read()
        assert hashlib.sha256(data).hexdigest() == SARIF_SCHEMA_SHA256, "schema package changed"
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            member = tar.extractfile(SARIF_SCHEMA_MEMBER)
            assert member is not None
            schema = member.read()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(schema)
    return dict(json.loads(path.read_text()))


def test_zipapps_list_every_native_file_with_its_component(sample_dist: Path) -> None:
    arts = sorted(sample_dist.glob("hostmetrics-1.0.0-*.p*"))
    doc = json.loads(buildkit("audit", *arts, "--json").stdout)
    by_archive = {Path(f["artifact"]).name: f for f in doc["files"]}
    assert set(by_archive) == {a.name for a in arts}  # one psutil module in each zipapp
    for entry in doc["files"]:
        assert entry["component"] == "wheel" and entry["origin"].startswith("psutil 7.")
    musl = by_archive["hostmetrics-1.0.0-alpine-arm64.pex"]
    assert (musl["libc"], musl["arch"], musl["checks"]["fortify"]["state"]) == (
        "musl",
        "aarch64",
        "n/a",
    )
    mac = by_archive["hostmetrics-1.0.0-darwin-arm64.pyz"]
    assert (mac["format"], mac["arch"], mac["kind"]) == ("mach-o", "arm64", "python-extension")
    assert mac["member"] == "site-packages/psutil/_psutil_osx.abi3.so"
    assert {"codesign", "hardened-runtime", "nx-heap", "pagezero"} <= set(mac["checks"])
    assert mac["checks"]["codesign"]["state"] == "pass"  # arm64 wheels are signed (ad hoc)
    # portcheck has no dependencies: its zipapps carry no native file at all
    text = buildkit("audit", sample_dist / "portcheck-1.0.0-linux-amd64.pex").stdout
    assert "0 native file(s)" in text


def test_exit_codes(sample_dist: Path, tmp_path: Path) -> None:
    linux = sorted(sample_dist.glob("hostmetrics-1.0.0-linux-*.p*"))
    assert buildkit("audit", *linux).returncode == 0
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    passed = buildkit("audit", *linux, "--policy", policy)
    assert "hardening gate passed" in passed.stdout and "waived:" in passed.stdout
    policy.write_text(POLICY.replace("2099-12-31", "2020-01-01"))
    failed = buildkit("audit", *linux, "--policy", policy, check=False)
    assert failed.returncode == 1, failed.stderr
    assert "stripped" in failed.stderr and "_psutil_linux.abi3.so" in failed.stderr
    assert "expired on 2020-01-01" in failed.stdout
    cut = tmp_path / "cut.pex"
    cut.write_bytes(linux[0].read_bytes()[:-100])
    bad = buildkit("audit", cut, check=False)
    assert bad.returncode == 2 and "could not be read" in bad.stderr
    usage = buildkit("audit", linux[0], "--format", "json,xml", check=False)
    assert usage.returncode == 2 and "unknown format xml" in usage.stderr


def test_sarif_validates_against_the_schema(
    sample_dist: Path, tmp_path: Path, sarif_schema: dict[str, object]
) -> None:
    validator = jsonschema.Draft4Validator(sarif_schema)
    written = json.loads((sample_dist / "hostmetrics-1.0.0.hardening.sarif").read_text())
    validator.validate(written)  # the one `buildkit build` wrote into the release
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY)
    arts = sorted(sample_dist.glob("hostmetrics-1.0.0-*.p*"))
    buildkit(
        "audit",
        *arts,
        "--policy",
        policy,
        "--format",
        "sarif,json",
        "--out",
        tmp_path,
        cwd=sample_dist,
    )
    doc = json.loads((tmp_path / "audit.hardening.sarif").read_text())
    validator.validate(doc)
    # one run per target, each with its code-scanning category
    ids = [run["automationDetails"]["id"] for run in doc["runs"]]
    assert ids == sorted(f"buildkit/hostmetrics/{t}/" for t in TARGETS)
    results = [r for run in doc["runs"] for r in run["results"]]
    assert {r["level"] for r in results} >= {"note"}  # the waived ones
    for r in results:
        uri = r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert uri.startswith("hostmetrics-1.0.0-") and "/" not in uri


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def test_html_report_renders_in_chromium(sample_dist: Path, tmp_path: Path) -> None:
    arts = sorted(sample_dist.glob("hostmetrics-1.0.0-*.p*"))
    buildkit("audit", *arts, "--format", "html", "--out", tmp_path, "--name", "hm")
    page = tmp_path / "hm.hardening.html"
    dom = chromium("--dump-dom", page.as_uri()).stdout
    assert dom.count('<tr data-component="wheel">') == len(arts)
    assert dom.count('<table class="matrix"') == len(arts)  # one per artifact
    assert "FAIL" in dom and "pass" in dom and "n/a" in dom
    # the component filter, opened through the link form #component=...
    filtered = chromium("--dump-dom", page.as_uri() + "#component=own").stdout
    assert filtered.count('<tr data-component="wheel" hidden="">') == len(arts)
    assert filtered.count('<tr class="details" data-component="wheel" hidden="">') == len(arts)
    shot = tmp_path / "matrix.png"
    chromium(f"--screenshot={shot}", "--window-size=1280,900", page.as_uri())
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


REPORT_HEAD = b'{"_schema": "buildkit-hardening/1", "files": ['


def _peak(*args: str | Path) -> tuple[int, str, int]:
    """Exit code, stderr and peak memory (KiB) of one `buildkit` run, measured by a
    wrapper process whose only child it is."""
    import sys

    wrapper = (
        "import resource, subprocess, sys\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "sys.stdout.write(p.stderr)\n"
        "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    cmd = [sys.executable, "-c", wrapper, sys.executable, "-m", "buildkit", *map(str, args)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    *lines, last = out.splitlines()
    code, kib = map(int, last.split())
    return code, "\n".join(lines), kib


def test_a_hostile_baseline_is_refused_with_bounded_memory(tmp_path: Path) -> None:
    """Reports of ``[{},{},…]``: 128 MiB (refused by size), 30 MiB (by the values it
    holds, before parsing: 30 MiB of empty objects took 820 MB to parse), and 64 reports
    that each pass alone but not together. Exit 2, the file named, under 200 MB."""
    big = tmp_path / "big"
    big.mkdir()
    with (big / "x-1.hardening.json").open("wb") as f:
        f.write(REPORT_HEAD)
        for _ in range(128):
            f.write(b"{}," * ((1 << 20) // 3))
        f.write(b"{}]}")
    dense = tmp_path / "dense"
    dense.mkdir()
    (dense / "x-1.hardening.json").write_bytes(REPORT_HEAD + b"{}," * (10 << 20) + b"{}]}")
    many = tmp_path / "many"
    many.mkdir()
    entry = b'{"path": "a", "artifact": "a", "member": "", "checks": {}},'
    for i in range(64):  # 64 x about 21,000 values: each alone is well formed and in bounds
        (many / f"x-{i}.hardening.json").write_bytes(
            REPORT_HEAD + entry * 3500 + entry[:-1] + b"]}"
        )
    for folder, why in (
        (big, "larger than"),
        (dense, "more than 1000000 JSON values"),
        (many, "more than"),
    ):
        code, err, kib = _peak("audit", "/bin/true", "--baseline", folder)
        assert code == 2, err
        assert "baseline report" in err and why in err, err
        assert kib < 200 * 1024, (folder.name, kib)
