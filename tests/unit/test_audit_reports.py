"""The report renderers: the JSON report follows its schema, HTML escapes what it shows,
SARIF carries what code scanning needs, Markdown gives the gate first."""

from __future__ import annotations

import datetime as dt
import json
import re
import zipfile
from importlib.resources import files
from pathlib import Path

import jsonschema

from buildkit.audit import html, output, report, sarif
from buildkit.audit.policy import evaluate
from buildkit.audit.run import AuditResult, audit_paths
from buildkit.recipe import Hardening, Waiver

ELF_BYTES = Path("/usr/bin/ls").read_bytes()


def audited(tmp_path: Path) -> AuditResult:
    art = tmp_path / "demo-1.0-linux-amd64.pyz"
    with zipfile.ZipFile(art, "w") as zf:
        zf.writestr("site-packages/fast/<script>alert(1)</script>.so", ELF_BYTES)
        zf.writestr("site-packages/fast-2.0.dist-info/RECORD", "")
        zf.writestr("site-packages/broken.so", ELF_BYTES[:200])
    own = tmp_path / "tool"
    own.write_bytes(ELF_BYTES)
    return audit_paths([art, own])


def gate_of(result: AuditResult):  # type: ignore[no-untyped-def]
    waiver = Waiver(path="tool", checks=("cet",), reason="crt not CET-marked", expires=dt.date.max)
    policy = Hardening(require=("relro-full", "nx", "cet"), scope="all", waivers=(waiver,))
    return evaluate(result.files, policy, today=dt.date(2026, 11, 28))


def test_json_report_follows_its_schema(tmp_path: Path) -> None:
    result = audited(tmp_path)
    schema = json.loads(files("buildkit").joinpath("data/hardening-report.schema.json").read_text())
    for gate in (None, gate_of(result)):
        doc = report.document(result, gate)
        jsonschema.Draft202012Validator(schema).validate(doc)
    assert doc["policy"]["passed"] is False
    assert {f["component"] for f in doc["files"]} == {"own", "wheel", "unknown"}
    by_path = {f["path"]: f for f in doc["files"]}
    broken = by_path[f"{tmp_path}/demo-1.0-linux-amd64.pyz!site-packages/broken.so"]
    assert broken["checks"]["parse"]["state"] == "fail"


def test_html_is_self_contained_and_escaped(tmp_path: Path) -> None:
    result = audited(tmp_path)
    page = html.render(result, gate_of(result), title="demo <1.0>")
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.so" in page
    assert "demo &lt;1.0&gt;" in page
    assert 'class="matrix"' in page and '<td class="waived">waived</td>' in page
    # nothing fetched: no external script, style, image or frame
    assert not re.search(r"(src|href)=\"?(https?:)?//", page) and "<link" not in page
    # the verdicts first, a details row per file, the gated rows marked
    assert page.index('id="verdicts"') < page.index('class="matrix"')
    assert page.count('<tr class="details"') == len(result.files)
    assert '<td class="gated">gated</td>' in page


def test_html_shows_only_the_columns_that_apply(tmp_path: Path) -> None:
    result = audited(tmp_path)
    page = html.render(result, None, title="demo")
    heads = re.findall(r"<thead><tr>(.*?)</tr></thead>", page)
    for head in heads:  # x86-64 ELF files: no BTI column, no Mach-O column
        assert ">bti<" not in head and ">codesign<" not in head and ">relro<" in head
    assert "Not applicable to any file here: bti" in page


def test_sarif_results_levels_and_fingerprints(tmp_path: Path) -> None:
    result = audited(tmp_path)
    doc = sarif.document(result, gate_of(result), root=tmp_path)
    runs = doc["runs"]
    # one run per recipe and target, each with its code-scanning category
    assert [r["automationDetails"]["id"] for r in runs] == [
        "buildkit/audit/",
        "buildkit/demo/linux-amd64/",
    ]
    levels = {}
    for run in runs:
        rules = run["tool"]["driver"]["rules"]
        assert all(
            r["id"].startswith("BK/") and r["properties"]["security-severity"] for r in rules
        )
        assert len({r["id"] for r in rules}) == len(rules)
        for res in run["results"]:
            assert rules[res["ruleIndex"]]["id"] == res["ruleId"]
            assert "Owner: " in res["message"]["text"] and "Fix: " in res["message"]["text"]
            loc = res["locations"][0]["physicalLocation"]
            assert not loc["artifactLocation"]["uri"].startswith("/")
            assert loc["region"]["startLine"] == 1
            assert res["partialFingerprints"]["buildkitNativeFileCheck/v2"]
            assert "baselineState" not in res  # no baseline given
            levels[(res["ruleId"], loc["artifactLocation"]["uri"])] = res["level"]
    assert levels[("BK/cet/own", "tool")] == "note"  # waived
    assert levels[("BK/relro/own", "tool")] == "error"  # required, not waived
    assert levels[("BK/parse/unknown", "demo-1.0-linux-amd64.pyz")] == "error"
    assert levels[("BK/relro/wheel", "demo-1.0-linux-amd64.pyz")] == "error"  # scope all
    waived = [r for run in runs for r in run["results"] if r["level"] == "note"]
    assert waived[0]["suppressions"][0]["justification"].startswith("crt not CET-marked")
    # the help of a rule says who owns such a file: it differs per component
    helps = {r["id"]: r["help"]["text"] for run in runs for r in run["tool"]["driver"]["rules"]}
    assert "[hardening].require" in helps["BK/relro/own"]
    assert "sdist" in helps["BK/relro/wheel"] and "upstream" in helps["BK/relro/wheel"]
    assert helps["BK/relro/own"] != helps["BK/relro/wheel"]


def test_markdown_and_written_files(tmp_path: Path) -> None:
    result = audited(tmp_path)
    gate = gate_of(result)
    text = report.markdown(result, gate, title="demo-1.0")
    assert text.startswith(
        "## Hardening audit: demo-1.0\n\n### Verdict\n\n**Policy gate ❌ failed**"
    )
    assert "- ❌ demo-1.0-linux-amd64.pyz: FAILS the gate: " in text
    assert "- ❌ tool: FAILS the gate: relro-full on tool" in text
    assert "#### fast 2.0 (a third-party wheel from PyPI)" in text
    assert "https://pypi.org/project/fast/" in text and "### Waived" in text
    assert "### Unreadable" in text
    out = tmp_path / "out"
    written = output.write_reports(out, "demo-1.0", result, gate)
    assert sorted(p.name for p in written) == sorted(
        f"demo-1.0.hardening.{f}" for f in ("json", "sarif", "md", "html")
    )
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in written)
    again = output.render("json", result, gate, title="demo-1.0", root=out)
    assert again == (out / "demo-1.0.hardening.json").read_text()  # deterministic
