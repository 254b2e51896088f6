"""The release stage's sequence on a real ELF file (no build, no process: the audit runs
in this process): a failed gate publishes nothing and leaves the rejected audit beside
the release; a waiver lets it through (and the rejected audit goes); an expired one
does not, and the earlier release is left as it was."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from buildkit.recipe import Hardening, Waiver
from buildkit.release import stage
from buildkit.release.manifest import ArtifactRecord
from buildkit.release.publish import listing_problems

NAME = "demo-1.0-linux-amd64"
STEM = "demo-1.0"
REJECTED = [f"{STEM}.rejected.hardening.{ext}" for ext in ("html", "json", "md", "sarif")]


@pytest.fixture
def built(tmp_path: Path) -> list[tuple[Path, ArtifactRecord]]:
    source = tmp_path / "cache" / NAME
    source.parent.mkdir()
    shutil.copyfile("/usr/bin/ls", source)  # Debian's ls carries no CET mark
    data = source.read_bytes()
    record = ArtifactRecord(
        name=NAME,
        recipe="demo",
        version="1.0",
        target="linux-amd64",
        format="nuitka",
        python="3.11",
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        lock="lockfiles/demo/linux-amd64.txt",
        lock_digest="sha256:0",
        inputs={"wheels": []},
    )
    return [(source, record)]


def policy(*waivers: Waiver) -> dict[str, Hardening]:
    return {STEM: Hardening(require=("cet",), scope="own", waivers=waivers)}


def waiver(expires: dt.date) -> Waiver:
    return Waiver(path="demo-1.0-*", checks=("cet",), reason="crt not CET-marked", expires=expires)


def test_gate_refuses_then_a_waiver_passes_then_its_expiry_refuses(
    tmp_path: Path, built: list[tuple[Path, ArtifactRecord]]
) -> None:
    out = tmp_path / "dist"
    with pytest.raises(stage.GateFailed, match=f"{NAME}: cet .*nothing was published") as exc:
        stage.release(out, built, policies=policy())
    assert exc.value.exit_code == 1
    assert sorted(p.name for p in out.iterdir()) == REJECTED
    assert json.loads((out / REJECTED[1]).read_text())["policy"]["passed"] is False

    done = stage.release(out, built, policies=policy(waiver(dt.date(2099, 12, 31))))
    assert done.gates[STEM].passed and done.gates[STEM].waived
    names = sorted(p.name for p in out.iterdir())
    assert not [n for n in names if ".rejected." in n]  # the stale rejected audit is gone
    assert {NAME, "manifest.json", "SHA256SUMS", f"{STEM}.cdx.json", f"{STEM}.intoto.jsonl"} <= set(
        names
    )
    assert [p.name for p in done.reports] == [
        f"{STEM}.hardening.{e}" for e in ("json", "sarif", "md", "html")
    ]
    assert done.signature is None
    assert listing_problems(out) == []
    sums = (out / "SHA256SUMS").read_text()
    assert f"  {STEM}.hardening.html\n" in sums and f"  {NAME}\n" in sums

    with pytest.raises(stage.GateFailed, match="nothing was published"):
        stage.release(out, built, policies=policy(waiver(dt.date(2020, 1, 1))))
    assert "expired on 2020-01-01" in (out / f"{STEM}.rejected.hardening.md").read_text()
    assert (out / "SHA256SUMS").read_text() == sums  # the earlier release is as it was
    assert listing_problems(out) == []


def test_an_unreadable_artifact_is_refused_with_its_audit(
    tmp_path: Path, built: list[tuple[Path, ArtifactRecord]]
) -> None:
    source, record = built[0]
    source.write_bytes(b"\x7fELF" + b"\x00" * 60)  # an ELF header and nothing else
    data = source.read_bytes()
    broken = ArtifactRecord(
        **{**record.to_dict(), "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    )
    out = tmp_path / "dist"
    with pytest.raises(stage.GateFailed, match="nothing was published"):
        stage.release(out, [(source, broken)], policies=policy(waiver(dt.date(2099, 1, 1))))
    assert sorted(p.name for p in out.iterdir()) == REJECTED
