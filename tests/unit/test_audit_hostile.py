"""Hostile input: mutated and truncated real binaries never crash the audit and each
gives a report (a finding when it cannot be read); a file that hangs or kills its parser
costs one bounded wait and becomes a finding."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from buildkit.audit import elf
from buildkit.audit.findings import State

SEEDS = [Path("/usr/bin/ls").read_bytes(), Path("/usr/bin/true").read_bytes()]


def mutate(draw: st.DrawFn, seed: bytes, hot: tuple[int, ...]) -> bytes:
    """``seed`` with a few bits flipped, runs zeroed or set, or its end cut; ``hot``: the
    lengths of the leading parts where most of the damage goes."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 8))):
        limit = draw(st.sampled_from([*hot, len(data)]))
        at = draw(st.integers(0, min(limit, len(data)) - 1))
        kind = draw(st.sampled_from(["flip", "zero", "ones", "cut"]))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "zero":
            data[at : at + 8] = bytes(len(data[at : at + 8]))
        elif kind == "ones":
            data[at : at + 8] = b"\xff" * len(data[at : at + 8])
        else:
            del data[max(at, 4) :]
    return bytes(data)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    # most damage where the parser looks first: headers and their tables
    return mutate(draw, draw(st.sampled_from(SEEDS)), (64, 4096))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_binaries_give_a_report_never_an_exception(data: bytes) -> None:
    report = elf.audit(data, "mutant")
    assert report.checks
    for check in report.checks:
        assert check.evidence
    if report.check("parse") is not None:
        assert [c.state for c in report.checks] == [State.FAIL]
