"""The one runner of external programs: a long step's heartbeat and streamed output."""

from __future__ import annotations

import itertools
import logging

import pytest

from buildkit import tools

pytestmark = pytest.mark.integration


def test_a_long_step_logs_a_heartbeat_and_streams_its_output(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(tools, "HEARTBEAT", 0.3)
    caplog.set_level(logging.DEBUG, logger="buildkit.tools")
    seen = []

    def beat(elapsed: float, last: str) -> str:
        seen.append((elapsed, last))
        return f"still working after {elapsed:.1f} s; last: {last}"

    proc = tools.run(
        ["sh", "-c", "echo first; sleep 1; echo second >&2; sleep 0.5; echo third"],
        what="a long step",
        heartbeat=beat,
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "first\nthird\n", "second\n")
    assert len(seen) >= 3  # about every 0.3 s of 1.5 s
    assert all(b[0] >= a[0] + 0.25 for a, b in itertools.pairwise(seen))
    assert seen[0][1] == "first" and seen[-1][1] == "second"
    beats = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert beats[0].startswith("still working after 0.3 s; last: first")
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert {"first", "second", "third"} <= set(lines)  # what --verbose shows as it comes


def test_a_watched_step_that_fails_or_hangs_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tools, "HEARTBEAT", 0.2)
    with pytest.raises(tools.ToolError, match=r"a step failed \(exit 3\)[\s\S]*said why"):
        tools.run(
            ["sh", "-c", "echo said why >&2; exit 3"],
            what="a step",
            heartbeat=lambda elapsed, last: "",
        )
    with pytest.raises(tools.ToolError, match="did not finish within 1 s; it was stopped"):
        tools.run(["sleep", "30"], what="a step", heartbeat=lambda elapsed, last: "", timeout=1)
