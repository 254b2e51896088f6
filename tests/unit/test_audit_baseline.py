"""What changed since the last release (baseline.py): files matched across versions,
failures new / unchanged / fixed, SARIF baselineState, the Markdown report leading with
the difference; a baseline folder that is not one is refused with the file and key.
Also who fixes what (remedy.py) and the verdict per artifact (verdict.py)."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest

from buildkit.audit import baseline, report, sarif
from buildkit.audit.findings import Check, Component, FileReport, State
from buildkit.audit.identity import artifact_key, category, identity
from buildkit.audit.policy import evaluate
from buildkit.audit.remedy import remedy
from buildkit.audit.run import AuditResult
from buildkit.audit.verdict import verdicts
from buildkit.errors import InputError
from buildkit.recipe import Hardening, Waiver

PEX = "dist/hostmetrics-{v}-linux-amd64.pex"
MEMBER = ".deps/psutil-{p}-cp36-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl/psutil/_psutil_linux.abi3.so"


def elf(path: str, artifact: str, fails: tuple[str, ...], **kw: object) -> FileReport:
    checks = tuple(
        Check(name=n, state=State.FAIL if n in fails else State.PASS, evidence=f"{n} evidence")
        for n in ("relro", "canary", "nx", "pie", "fortify")
    )
    fields = dict(component=Component.OWN, origin="hostmetrics")
    fields.update(kw)  # type: ignore[arg-type]
    return FileReport(
        path=path, format="elf", kind="python-extension", arch="x86-64", libc="glibc",
        checks=checks, artifact=artifact, **fields,  # type: ignore[arg-type]
    )  # fmt: skip


def release(
    version: str, psutil: str, *, wheel_fails: tuple[str, ...], own_fails: tuple[str, ...]
) -> AuditResult:
    art = PEX.format(v=version)
    binary = f"dist/hostmetrics-{version}-linux-amd64"
    files = (
        elf(f"{art}!{MEMBER.format(p=psutil)}", art, wheel_fails, component=Component.WHEEL,
            origin=f"psutil {psutil}", source=f"psutil-{psutil}-cp36-abi3-manylinux_2_17_x86_64.whl"),
        elf(binary, binary, own_fails),
    )  # fmt: skip
    return AuditResult(files=files, problems=(), not_audited=())


def written(folder: Path, result: AuditResult) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    doc = report.document(result, None)
    (folder / "hostmetrics-1.0.0.hardening.json").write_text(json.dumps(doc))
    return folder


def test_identity_drops_versions() -> None:
    old, new = (
        release("1.0.0", "7.0.0", wheel_fails=(), own_fails=()),
        release("1.1.0", "7.1.0", wheel_fails=(), own_fails=()),
    )
    assert [identity(f) for f in old.files] == [identity(f) for f in new.files]
    assert identity(new.files[0]) == (
        "hostmetrics-linux-amd64.pex!.deps/psutil/psutil/_psutil_linux.abi3.so"
    )
    assert artifact_key("x/portcheck-2.0-alpine-arm64.pyz") == "portcheck-alpine-arm64.pyz"
    assert category("dist/hostmetrics-1.0.0-linux-amd64") == "buildkit/hostmetrics/linux-amd64/"
    assert category("/usr/bin/ls") == "buildkit/audit/"


def test_new_unchanged_and_fixed(tmp_path: Path) -> None:
    old = release("1.0.0", "7.0.0", wheel_fails=("relro",), own_fails=("fortify",))
    # the next release: psutil upgraded, still no full RELRO; our binary lost its canary
    # (one flag removed) and gained FORTIFY
    new = release("1.1.0", "7.1.0", wheel_fails=("relro",), own_fails=("canary",))
    base = baseline.load(written(tmp_path / "old", old))
    diff = baseline.compare(new, base)
    assert [(c.identity, c.check) for c in diff.new] == [("hostmetrics-linux-amd64", "canary")]
    assert [c.check for c in diff.unchanged] == ["relro"]
    assert [(c.identity, c.check) for c in diff.fixed] == [("hostmetrics-linux-amd64", "fortify")]
    assert diff.summary().startswith("1 new failure(s), 1 fixed, 1 unchanged since ")

    doc = sarif.document(new, None, baseline=diff)
    states = {r["ruleId"]: r["baselineState"] for run in doc["runs"] for r in run["results"]}
    assert states == {"BK/canary/own": "new", "BK/relro/wheel": "unchanged"}
    text = report.markdown(new, None, title="hostmetrics-1.1.0", baseline=diff)
    head = text.split("### Verdict")[0]
    assert "### Since the baseline: 1 new failure(s), 1 fixed, 1 unchanged" in head
    assert "| `hostmetrics-linux-amd64` | canary |" in head  # the new one, before the rest
    json_doc = report.document(new, None, baseline=diff)
    assert [c["check"] for c in json_doc["baseline"]["fixed"]] == ["fortify"]


def test_an_artifact_the_baseline_lacks_is_all_new_and_an_old_target_is_not_fixed(
    tmp_path: Path,
) -> None:
    old = release("1.0.0", "7.0.0", wheel_fails=("relro",), own_fails=())
    base = baseline.load(written(tmp_path / "old", old))
    other = elf(
        "dist/hostmetrics-1.1.0-linux-arm64", "dist/hostmetrics-1.1.0-linux-arm64", ("pie",)
    )
    diff = baseline.compare(AuditResult(files=(other,), problems=(), not_audited=()), base)
    assert [c.check for c in diff.new] == ["pie"] and not diff.fixed and not diff.unchanged


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "not JSON"),
        (b'{"_schema": "cyclonedx", "files": []}', "_schema: not 'buildkit-hardening/1'"),
        (b'{"_schema": "buildkit-hardening/1", "files": {}}', "files: missing or not a list"),
        (b'{"_schema": "buildkit-hardening/1", "files": [{"path": 1}]}', "files[0].path"),
        (
            b'{"_schema": "buildkit-hardening/1", "files": [{"path": "a", "artifact": "a",'
            b' "member": "", "checks": {"relro": "fail"}}]}',
            "files[0].checks",
        ),
    ],
)
def test_a_bad_baseline_report_is_refused(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "x-1.0.hardening.json").write_bytes(content)
    with pytest.raises(InputError, match=r"x-1\.0\.hardening\.json: ") as info:
        baseline.load(tmp_path)
    assert message in str(info.value)
    assert info.value.exit_code == 2


def test_a_baseline_that_is_not_a_release_folder_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(InputError, match="not a folder"):
        baseline.load(tmp_path / "missing")
    with pytest.raises(InputError, match=r"no \*\.hardening\.json report"):
        baseline.load(tmp_path)
    (tmp_path / "target.json").write_text("{}")
    os.symlink(tmp_path / "target.json", tmp_path / "x-1.0.hardening.json")
    with pytest.raises(InputError, match="symbolic link"):
        baseline.load(tmp_path)
    os.unlink(tmp_path / "x-1.0.hardening.json")
    written(tmp_path, release("1.0.0", "7.0.0", wheel_fails=(), own_fails=()))
    monkeypatch.setattr(baseline, "MAX_REPORT", 100)
    with pytest.raises(InputError, match="larger than 100 bytes"):
        baseline.load(tmp_path)


def test_remedy_names_the_owner_and_the_way_out() -> None:
    new = release("1.1.0", "7.1.0", wheel_fails=("relro",), own_fails=("canary",))
    wheel, own = new.files
    fix = remedy(wheel, ("relro",), ("canary",))
    assert fix.owner.startswith("psutil 7.1.0, wheel psutil-7.1.0-cp36-abi3-manylinux_2_17")
    assert "sdist" in fix.actions[0] and "-Wl,-z,relro,-z,now" in fix.actions[0]
    assert "https://pypi.org/project/psutil/" in fix.actions[1]
    assert 'path = "psutil/*"' in fix.actions[2] and "expires" in fix.actions[2]
    fix = remedy(own, ("canary",), ("relro-full",))
    assert fix.owner == "the recipe (hostmetrics)"
    assert "-fstack-protector-strong" in fix.actions[0]
    assert "add 'canary' to [hardening].require" in fix.actions[0]
    interp = elf(
        "a!_ssl.so", "a", ("relro",), component=Component.INTERPRETER, origin="CPython 3.11"
    )
    assert "hermetic toolchain" in remedy(interp, ("relro",)).actions[0]
    tool = elf(
        "a!_ssl.so",
        "a",
        ("relro",),
        component=Component.TOOLCHAIN,
        origin="CPython 3.11.14 toolchain",
    )
    assert "buildkit/toolchain/build.py" in remedy(tool, ("relro",)).actions[0]
    lib = elf("a!libssl.so.3", "a", ("relro",), component=Component.SYSTEM,
              origin="copied from the build host", source="pkg:deb/debian/libssl3@3.0.15-1")  # fmt: skip
    assert remedy(lib, ("relro",)).owner.startswith("pkg:deb/debian/libssl3@3.0.15-1")


def test_one_verdict_per_artifact() -> None:
    new = release("1.1.0", "7.1.0", wheel_fails=("relro",), own_fails=("canary",))
    waiver = Waiver(
        path="hostmetrics-*", checks=("canary",), reason="known", expires=dt.date(2099, 1, 1)
    )
    gate = evaluate(
        new.files, Hardening(require=("relro-full", "canary"), scope="own", waivers=(waiver,))
    )
    lines = [v.line() for v in verdicts(new, gate)]
    assert lines == [
        "hostmetrics-1.1.0-linux-amd64: passes the gate (1 of 1 native file(s) in scope, 1 waived)",
        "hostmetrics-1.1.0-linux-amd64.pex: passes the gate (0 of 1 native file(s) in scope); "
        "1 file(s) outside the gate fail a check (reported)",
    ]
    gate = evaluate(new.files, Hardening(require=("relro-full", "canary"), scope="all", waivers=()))
    first = verdicts(new, gate)[1]
    assert first.passed is False
    assert first.line().startswith(
        "hostmetrics-1.1.0-linux-amd64.pex: FAILS the gate: relro-full on .deps/psutil-"
    )
    assert next(v.line() for v in verdicts(new, None)).endswith(
        "no policy: 1 of 1 native file(s) fail a check"
    )


def test_rule_help_differs_for_each_owner() -> None:
    from buildkit.audit.remedy import rule_help

    helps = {c: rule_help("canary", c) for c in Component}
    assert len({who for who, _ in helps.values()}) == len(Component)
    assert len({how for _, how in helps.values()}) == len(Component)
    assert "-fstack-protector-strong" in helps[Component.OWN][1]
    assert "zig_target" in helps[Component.INTERPRETER][1]
    assert "sdist" in helps[Component.WHEEL][1]
    assert "Find its source" in helps[Component.UNKNOWN][1]
