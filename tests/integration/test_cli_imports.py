"""--help loads neither LIEF nor cyclonedx; each command imports only what it uses
(measured in a fresh interpreter: -X importtime lists every module imported)."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _imported(*words: str) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "buildkit", *words],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line]
    return {line for line in lines if line and line != "imported package"}


@pytest.mark.parametrize(
    "words",
    [
        ["--help"],
        ["build", "--help"],
        ["audit", "--help"],
        ["verify", "--help"],
        ["lock", "--help"],
    ],
)
def test_help_loads_neither_lief_nor_cyclonedx(words: list[str]) -> None:
    mods = _imported(*words)
    assert "buildkit.cli" in mods  # the measurement itself works
    assert not {m for m in mods if m.split(".")[0] in ("lief", "cyclonedx")}


def test_inspect_loads_no_build_machinery(tmp_path) -> None:
    mods = _imported("inspect", str(tmp_path / "missing"))
    assert "buildkit.buildinfo" in mods
    assert not {m for m in mods if m in ("buildkit.build", "buildkit.audit.run", "lief")}
