"""One check run for real, on this machine: what the checks read of a program's output."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildkit.checks import run
from buildkit.checks.model import Check

pytestmark = pytest.mark.integration


def _program(tmp_path: Path, body: str) -> Path:
    program = tmp_path / "app"
    program.write_text(f"#!/bin/sh\n{body}\n")
    program.chmod(0o755)
    return program


def _local(tmp_path: Path) -> run.Local:
    home = tmp_path / "home"
    (home / "tmp").mkdir(parents=True)
    return run.Local(where="this machine", home=home)


def test_output_without_end_is_read_only_so_far_and_fails_the_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A program that writes more than a check reads (a runaway loop printing until its
    timeout) fails with the size named; the check judged what it read, not all of it."""
    monkeypatch.setattr(run, "READ_AT_MOST", 4096)
    program = _program(tmp_path, "i=0; while [ $i -lt 2000 ]; do echo line $i; i=$((i+1)); done")
    check = Check(name="chatty", args=(), stdout="line 0")
    outcome = run.run_one(_local(tmp_path), program, "app", check, tmp_path / "w")
    assert not outcome.passed
    (problem,) = outcome.problems
    assert problem.startswith("stdout is ") and "more than the 4096 a check reads" in problem
    assert int(problem.split()[2]) > 4096
    assert len(outcome.stdout) <= run.KEEP + 1  # its end, after an ellipsis


def test_output_within_the_limit_is_judged_whole(tmp_path: Path) -> None:
    program = _program(tmp_path, 'echo "checked: $1"; echo "warn: 3" >&2; exit 1')
    check = Check(name="both", args=("x",), exit=1, stdout="checked: x", stderr_regex=r"^warn: 3$")
    outcome = run.run_one(_local(tmp_path), program, "app", check, tmp_path / "w")
    assert outcome.passed, outcome.problems
    assert outcome.stdout == "checked: x\n" and outcome.stderr == "warn: 3\n"
