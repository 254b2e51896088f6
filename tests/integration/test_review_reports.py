"""Reports a security reviewer can act on, on the samples' real releases: a verdict per
artifact, the owner and remedy of each failing file (psutil's version and wheel, the
toolchain, our own flags), SARIF valid with help per check and component and a
baselineState against an earlier release built with one flag fewer, the SBOM attributing
every native file of every artifact (OpenSSL with the version the bytes carry), a system
library traced to its Debian package, and the HTML report fitting a 1280 px screen in
headless Chromium."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from buildkit.recipe import Hardening
from buildkit.release import stage
from buildkit.release.manifest import ArtifactRecord
from tests.conftest import with_hardening
from tests.integration.conftest import buildkit
from tests.integration.test_audit_cli import chromium, sarif_schema  # noqa: F401 (fixture)
from tests.integration.test_build import HOST
from tests.integration.test_nuitka import build_copy

pytestmark = pytest.mark.integration

SCREENSHOTS = Path(os.environ.get("BUILDKIT_TEST_SCREENSHOTS", "test-output"))


@pytest.fixture(scope="module")
def weaker_release(
    nuitka_build: dict[str, Any], tmp_path_factory: pytest.TempPathFactory, cache_dir: Path
) -> Path:
    """hostmetrics' next release with one flag fewer (no "canary": no stack protector and
    no stack clash protection in our own code), compared with the release before."""
    root = tmp_path_factory.mktemp("weaker")
    project = root / "project"
    shutil.copytree(
        Path(__file__).parents[2] / "recipes" / "hostmetrics",
        project / "recipes" / "hostmetrics",
        ignore=shutil.ignore_patterns("__pycache__", "tests"),
    )
    shutil.copytree(
        Path(__file__).parents[2] / "lockfiles" / "hostmetrics",
        project / "lockfiles" / "hostmetrics",
    )
    recipe = project / "recipes" / "hostmetrics"
    toml = recipe / "recipe.toml"
    table = '[hardening]\nrequire = ["relro-full", "nx", "pie", "fortify", "glibc"]'
    toml.write_text(with_hardening(toml.read_text(), table))
    out = root / "dist"
    build_copy(
        recipe, out, root / "cache", seed_from=cache_dir, extra=("--baseline", nuitka_build["dist"])
    )
    return out


def test_sarif_tells_new_from_unchanged_with_help_per_component(
    weaker_release: Path,
    sarif_schema: dict[str, object],  # noqa: F811
) -> None:
    doc = json.loads((weaker_release / "hostmetrics-1.0.0.hardening.sarif").read_text())
    jsonschema.Draft4Validator(sarif_schema).validate(doc)
    (run,) = doc["runs"]
    assert run["automationDetails"]["id"] == f"buildkit/hostmetrics/{HOST}/"
    states = {
        (r["ruleId"], r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]): r[
            "baselineState"
        ]
        for r in run["results"]
    }
    binary = f"hostmetrics-1.0.0-{HOST}"
    assert states[("BK/canary/own", binary)] == "new"
    assert states[("BK/stack-clash/own", binary)] == "new"
    assert states[("BK/cet/own", binary)] == "unchanged"
    psutil = [k for k in states if k[0] == "BK/relro/wheel"]
    assert psutil and all(states[k] == "unchanged" for k in psutil)
    assert set(states.values()) == {"new", "unchanged"}
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    own, wheel, toolchain = (
        rules["BK/cet/own"]["help"]["text"],
        rules["BK/cet/wheel"]["help"]["text"],
        rules["BK/cet/toolchain"]["help"]["text"],
    )
    assert len({own, wheel, toolchain}) == 3
    assert "[hardening].require" in own and "-fcf-protection=full" in own
    assert "sdist" in wheel and "upstream" in wheel
    assert "buildkit/toolchain/build.py" in toolchain
    canary = next(
        r for r in run["results"] if r["ruleId"] == "BK/canary/own"
    )  # reported: the weaker policy does not require it
    assert (
        canary["level"] == "warning"
        and "Owner: the recipe (hostmetrics)" in canary["message"]["text"]
    )


def test_markdown_leads_with_the_difference_then_owners_and_remedies(weaker_release: Path) -> None:
    text = (weaker_release / "hostmetrics-1.0.0.hardening.md").read_text()
    head, _, rest = text.partition("### Verdict")
    assert "### Since the baseline: " in head and "new failure(s)" in head
    assert f"| `hostmetrics-{HOST}` | canary |" in head
    assert f"- ✅ hostmetrics-1.0.0-{HOST}: passes the gate" in rest
    # psutil: its version and wheel, the checks each of its files fails, and the way out
    section = rest.split("#### psutil ", 1)[1].split("####", 1)[0]
    assert section.startswith("7.") and ", wheel psutil-7." in section
    assert f"`hostmetrics-1.0.0-{HOST}!psutil/_psutil_linux.so` | relro, canary, fortify" in section
    assert "https://pypi.org/project/psutil/" in section and "pip download --no-binary" in section
    assert "#### buildkit's hermetic toolchain (CPython 3.1" in rest


def test_audit_cli_baseline(sample_dist: Path, tmp_path: Path) -> None:
    arts = sorted(sample_dist.glob("hostmetrics-1.0.0-linux-*.p*"))
    same = buildkit("audit", *arts, "--baseline", sample_dist)
    assert "0 new failure(s), 0 fixed, " in same.stdout
    assert f"since {sample_dist}" in same.stdout
    (tmp_path / "x-1.0.hardening.json").write_text('{"_schema": "something else"}')
    bad = buildkit("audit", *arts, "--baseline", tmp_path, check=False)
    assert bad.returncode == 2 and "x-1.0.hardening.json: _schema" in bad.stderr
    missing = buildkit("audit", *arts, "--baseline", tmp_path / "nope", check=False)
    assert missing.returncode == 2 and "not a folder" in missing.stderr


def _owners(
    components: list[dict[str, Any]], parent: dict[str, Any] | None, out: dict[str, Any]
) -> None:
    for c in components:
        if c["bom-ref"].startswith("native:"):
            out[c["name"]] = (parent, c)
        _owners(c.get("components", []), c, out)


def test_sbom_attributes_every_native_file(sample_dist: Path, nuitka_build: dict[str, Any]) -> None:
    validator = JsonStrictValidator(SchemaVersion.V1_6)
    seen = 0
    for dist in (sample_dist, nuitka_build["dist"]):
        for path in sorted(dist.glob("*.cdx.json")):
            text = path.read_text()
            assert validator.validate_str(text) is None, path
            owners: dict[str, Any] = {}
            _owners(json.loads(text)["components"], None, owners)
            report = json.loads(
                (dist / path.name.replace(".cdx.json", ".hardening.json")).read_text()
            )
            for f in report["files"]:
                art = Path(f["artifact"]).name
                name = f"{art}!{f['member']}" if f["member"] else art
                assert name in owners, f"{name} is not in {path.name}"
                parent, file = owners[name]
                props = {p["name"]: p["value"] for p in file["properties"]}
                kind = props["buildkit:component"]
                assert kind != "unknown" and parent is not None, (name, props)
                assert file["hashes"][0]["content"] == f["sha256"]
                expected = {
                    "wheel": ("wheel:", "pkg:pypi/"),
                    "toolchain": ("toolchain:cpython@", "pkg:generic/cpython@"),
                    "interpreter": ("interpreter:", "pkg:generic/cpython@"),
                    "system": ("system:", "pkg:"),
                    "own": ("", ""),
                }[kind]
                assert parent["bom-ref"].startswith(expected[0]), (name, parent["bom-ref"])
                assert parent.get("purl", "").startswith(expected[1]), (name, parent)
                seen += 1
    assert seen > 100  # zipapps for four targets and the Nuitka binaries with their payloads


def test_openssl_in_a_nuitka_binary_is_in_its_sbom_with_the_version_its_bytes_carry(
    nuitka_build: dict[str, Any],
) -> None:
    doc = json.loads((nuitka_build["dist"] / "healthcheck-1.0.0.cdx.json").read_text())
    found = [c for c in doc["components"] if c["name"] == "openssl"]
    assert len(found) == 1 and found[0]["purl"] == f"pkg:generic/openssl@{found[0]['version']}"
    ref = f"native:healthcheck-1.0.0-{HOST}!_ssl.so"
    needs = {d["ref"]: d.get("dependsOn", []) for d in doc["dependencies"]}
    assert needs[ref] == [found[0]["bom-ref"]]
    payload = Path(nuitka_build["healthcheck"]["payload"])
    assert f"OpenSSL {found[0]['version']}".encode() in (payload / "_ssl.so").read_bytes()
    for library in ("libffi", "zlib", "xz", "bzip2"):
        (c,) = [c for c in doc["components"] if c["name"] == library]
        assert c["version"] and c["hashes"], c


def test_a_copied_system_library_is_traced_to_its_debian_package(tmp_path: Path) -> None:
    """A library from the build host inside an artifact: the release names the package
    and version it came from (dpkg), in the reports, the manifest and the SBOM."""
    host = Path("/usr/lib/x86_64-linux-gnu/libssl.so.3")
    if not host.exists():
        pytest.skip("this host has no libssl.so.3 where Debian puts it")
    version = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", "libssl3"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    source = tmp_path / "demo-1.0-linux-amd64.pyz"
    with zipfile.ZipFile(source, "w") as zf:
        zf.writestr("lib/libssl.so.3", host.read_bytes())
    data = source.read_bytes()
    record = ArtifactRecord(
        name=source.name, recipe="demo", version="1.0", target="linux-amd64", format="shiv",
        python="3.11", sha256=hashlib.sha256(data).hexdigest(), size=len(data),
        lock="lockfiles/demo/linux-amd64.txt", lock_digest="sha256:0", inputs={"wheels": []},
    )  # fmt: skip
    out = tmp_path / "dist"
    stage.release(
        out,
        [(source, record)],
        policies={"demo-1.0": Hardening(require=("nx",), scope="own", waivers=())},
    )
    purl = f"pkg:deb/debian/libssl3@{version}?arch=amd64"
    (entry,) = json.loads((out / "manifest.json").read_text())["artifacts"]
    (native,) = entry["natives"]
    assert (native["path"], native["component"], native["source"]) == (
        "lib/libssl.so.3",
        "system",
        purl,
    )
    sbom = json.loads((out / "demo-1.0.cdx.json").read_text())
    (package,) = [c for c in sbom["components"] if c.get("purl") == purl]
    assert [n["name"] for n in package["components"]] == [f"{source.name}!lib/libssl.so.3"]
    md = (out / "demo-1.0.hardening.md").read_text()
    assert f"#### {purl}: a system library libssl3 {version} (debian package" in md


def test_html_report_fits_a_1280_px_screen(
    sample_dist: Path, nuitka_build: dict[str, Any], tmp_path: Path
) -> None:
    """The verdict lines and every column that applies are visible without scrolling
    sideways (measured by the page itself in headless Chromium); the screenshot is kept
    in test-output/ for a person to look at."""
    page = tmp_path / "report.html"
    html = (nuitka_build["dist"] / "hostmetrics-1.0.0.hardening.html").read_text()
    probe = """<script>
var width = innerWidth, over = [];
document.querySelectorAll('#verdicts li, table.matrix th, #gate, h1').forEach(function (e) {
  var box = e.getBoundingClientRect();
  if (box.right > width + 0.5) over.push(e.textContent.slice(0, 60));
});
document.body.setAttribute('data-fit', JSON.stringify(
  {scroll: document.documentElement.scrollWidth, width: width, over: over,
   verdicts: document.querySelectorAll('#verdicts li').length,
   columns: document.querySelectorAll('table.matrix th').length}));
</script></body>"""
    page.write_text(html.replace("</body>", probe))
    dom = chromium("--window-size=1280,900", "--dump-dom", page.as_uri()).stdout
    fit = json.loads(dom.split('data-fit="', 1)[1].split('"', 1)[0].replace("&quot;", '"'))
    assert fit["width"] == 1280 and fit["scroll"] <= 1280 and fit["over"] == [], fit
    assert fit["verdicts"] >= 1 and fit["columns"] >= 10, fit
    assert ">seccomp<" in dom and ">bti<" not in dom  # x86-64 files: no BTI column
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / "hardening-report-1280.png"
    chromium(f"--screenshot={shot.resolve()}", "--window-size=1280,900", page.as_uri())
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    print(f"screenshot: {shot.resolve()}")
    # printable: every details row opens for print (the page's beforeprint hook)
    pdf = tmp_path / "report.pdf"
    chromium(f"--print-to-pdf={pdf}", "--no-pdf-header-footer", page.as_uri())
    assert pdf.read_bytes()[:5] == b"%PDF-"
