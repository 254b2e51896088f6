"""The LIEF-based ELF checks agree with Debian's checksec on real files of this machine,
and tell a gcc build with and without hardening flags apart."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from buildkit.audit import elf
from buildkit.audit.findings import State

pytestmark = pytest.mark.integration


def sample_files() -> list[Path]:
    libs = sorted(Path("/usr/lib/x86_64-linux-gnu").glob("lib*.so.*"))
    bins = sorted(Path("/usr/bin").glob("*"))
    elves = []
    for path in [*libs[:120], *bins[:120]]:
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as f:
                if f.read(4) == b"\x7fELF":
                    elves.append(path)
    return elves


def checksec_dir(files: list[Path]) -> dict[str, dict[str, str]]:
    out = {}
    for path in files:
        proc = subprocess.run(
            ["checksec", f"--file={path}", "--output=json"],
            capture_output=True,
            text=True,
            check=True,
        )
        out.update(json.loads(proc.stdout))
    return out


def test_agrees_with_checksec_on_system_files() -> None:
    files = sample_files()
    assert len(files) >= 100
    oracle = checksec_dir(files)
    disagreements = []
    for path in files:
        want = oracle[str(path)]
        report = elf.audit(path.read_bytes(), str(path))
        got = {
            "relro": report.check("relro").evidence.split(":")[0],
            "canary": "yes" if report.check("canary").state == State.PASS else "no",
            "nx": "yes" if report.check("nx").state == State.PASS else "no",
            "pie": {State.PASS: "yes", State.FAIL: "no", State.NOT_APPLICABLE: "dso"}[
                report.check("pie").state
            ],
            "fortify_source": "yes" if report.check("fortify").state == State.PASS else "no",
            "symbols": "no" if report.check("stripped").state == State.PASS else "yes",
        }
        for key, value in got.items():
            theirs = want[key]
            if key == "pie" and theirs in ("rel", "REL"):
                continue
            if value != theirs:
                disagreements.append(f"{path}: {key} ours={value} checksec={theirs}")
    assert disagreements == []


@pytest.mark.parametrize(
    ("flags", "expect"),
    [
        (
            [
                "-O2",
                "-fstack-protector-strong",
                "-D_FORTIFY_SOURCE=2",
                "-fPIE",
                "-pie",
                "-Wl,-z,relro,-z,now",
                "-Wl,-z,noexecstack",
            ],
            {
                "relro": State.PASS,
                "canary": State.PASS,
                "nx": State.PASS,
                "pie": State.PASS,
                "fortify": State.PASS,
            },
        ),
        (
            [
                "-O2",
                "-fno-stack-protector",
                "-U_FORTIFY_SOURCE",
                "-no-pie",
                "-Wl,-z,norelro",
                "-Wl,-z,execstack",
            ],
            {
                "relro": State.FAIL,
                "canary": State.FAIL,
                "nx": State.FAIL,
                "pie": State.FAIL,
                "fortify": State.FAIL,
            },
        ),
    ],
    ids=["hardened", "bare"],
)
def test_gcc_builds_told_apart(tmp_path: Path, flags: list[str], expect: dict[str, State]) -> None:
    src = tmp_path / "probe.c"
    src.write_text(
        "#include <stdio.h>\n#include <string.h>\n"
        "int main(int argc, char **argv) { char buf[64]; strcpy(buf, argv[0]);"
        ' printf("%s %d\\n", buf, argc); return 0; }\n'
    )
    out = tmp_path / "probe"
    subprocess.run(["gcc", *flags, str(src), "-o", str(out)], check=True, capture_output=True)
    report = elf.audit(out.read_bytes(), str(out))
    assert {name: report.check(name).state for name in expect} == expect, report
