"""The hardening gate: required checks, scope, waivers with expiry, policy files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from buildkit.audit.findings import Check, Component, FileReport, State
from buildkit.audit.policy import evaluate
from buildkit.errors import RecipeError
from buildkit.recipe import Hardening, Waiver, load_policy

TODAY = dt.date(2026, 11, 28)


def report(path: str, component: Component, **states: State) -> FileReport:
    checks = tuple(
        Check(name=name.replace("_", "-"), state=state, evidence=f"{name} seen")
        for name, state in states.items()
    )
    return FileReport(
        path=path,
        format="elf",
        kind="pie-executable",
        arch="x86-64",
        libc="glibc",
        checks=checks,
        component=component,
        artifact=path.split("!", maxsplit=1)[0],
    )


OWN = report("app!app.bin", Component.OWN, relro=State.PASS, canary=State.FAIL, pie=State.PASS)
LIB = report(
    "app!psutil/_psutil.so",
    Component.WHEEL,
    relro=State.FAIL,
    canary=State.FAIL,
    pie=State.NOT_APPLICABLE,
)


def policy(*require: str, scope: str = "own", waivers: tuple[Waiver, ...] = ()) -> Hardening:
    return Hardening(require=require, scope=scope, waivers=waivers)


def test_scope_own_gates_only_our_code() -> None:
    gate = evaluate((OWN, LIB), policy("relro-full", "canary", "pie"), today=TODAY)
    assert not gate.passed
    assert [(v.path, v.requirement) for v in gate.failures] == [("app!app.bin", "canary")]
    assert all(v.path == "app!app.bin" for v in gate.verdicts)


def test_scope_all_gates_every_file_and_na_is_not_a_failure() -> None:
    gate = evaluate((OWN, LIB), policy("relro-full", "pie", scope="all"), today=TODAY)
    assert [(v.path, v.requirement) for v in gate.failures] == [
        ("app!psutil/_psutil.so", "relro-full")
    ]
    outcomes = {(v.path, v.requirement): v.outcome for v in gate.verdicts}
    assert outcomes[("app!psutil/_psutil.so", "pie")] == "n/a"


def test_waiver_applies_until_it_expires() -> None:
    later = Waiver(path="app.bin", checks=("canary",), reason="vendor blob", expires=TODAY)
    gate = evaluate((OWN,), policy("canary", waivers=(later,)), today=TODAY)
    assert gate.passed
    assert gate.waived[0].waiver.startswith("vendor blob (waiver 'app.bin' until 2026-11-28)")
    gate = evaluate((OWN,), policy("canary", waivers=(later,)), today=TODAY + dt.timedelta(1))
    assert not gate.passed
    assert "expired on 2026-11-28: no longer applies" in gate.failures[0].waiver


def test_waiver_matches_by_glob_and_check() -> None:
    other_check = Waiver(path="*.bin", checks=("relro-full",), reason="r", expires=TODAY)
    other_file = Waiver(path="psutil/*.so", checks=("canary",), reason="r", expires=TODAY)
    gate = evaluate((OWN,), policy("canary", waivers=(other_check, other_file)), today=TODAY)
    assert not gate.passed
    assert len(gate.unused_waivers) == 2
    every_check = Waiver(path="*.bin", checks=(), reason="r", expires=TODAY)
    assert evaluate((OWN,), policy("canary", waivers=(every_check,)), today=TODAY).passed


def test_relro_partial_accepts_partial_and_full() -> None:
    partial = FileReport(
        path="x",
        format="elf",
        kind="pie-executable",
        arch="x86-64",
        libc="glibc",
        checks=(Check(name="relro", state=State.FAIL, evidence="partial: PT_GNU_RELRO"),),
        component=Component.OWN,
    )
    assert evaluate((partial,), policy("relro-partial"), today=TODAY).passed
    assert not evaluate((partial,), policy("relro-full"), today=TODAY).passed


def test_unparseable_file_in_scope_fails() -> None:
    broken = FileReport(
        path="x",
        format="elf",
        kind="unknown",
        arch="unknown",
        libc="unknown",
        checks=(Check(name="parse", state=State.FAIL, evidence="truncated"),),
        component=Component.OWN,
    )
    gate = evaluate((broken,), policy("nx"), today=TODAY)
    assert [(v.requirement, v.evidence) for v in gate.failures] == [("parse", "truncated")]


def test_unknown_is_reported_not_failed() -> None:
    unknown = report("a", Component.OWN, canary=State.UNKNOWN)
    gate = evaluate((unknown,), policy("canary"), today=TODAY)
    assert gate.passed and gate.verdicts[0].outcome == "unknown"


def test_policy_file(tmp_path: Path) -> None:
    good = tmp_path / "policy.toml"
    good.write_text(
        '[hardening]\nrequire = ["canary", "nx"]\nscope = "all"\n'
        '[[hardening.waivers]]\npath = "*.so"\nchecks = ["canary"]\nreason = "r"\n'
        "expires = 2027-01-31\n"
    )
    p = load_policy(good)
    assert p.require == ("canary", "nx") and p.scope == "all"
    assert p.waivers[0].expires == dt.date(2027, 1, 31)
    bad = tmp_path / "bad.toml"
    bad.write_text('[hardening]\nrequire = ["canery"]\n')
    with pytest.raises(RecipeError, match=r"bad.toml:2: \[hardening\].require: .*'canary'"):
        load_policy(bad)
    bad.write_text(
        '[hardening]\nrequire = []\n[[hardening.waivers]]\npath = "x"\nreason = "r"\n'
        'expires = "soon"\n'
    )
    with pytest.raises(RecipeError, match="expires: must be a date"):
        load_policy(bad)
    bad.write_text("[recipe]\nname = 'x'\n")
    with pytest.raises(RecipeError, match=r"no \[hardening\] table"):
        load_policy(bad)
    with pytest.raises(RecipeError, match="no such policy file"):
        load_policy(tmp_path / "missing.toml")


def _glibc_file(path: str, component: Component, state: State, evidence: str) -> FileReport:
    return FileReport(
        path=path,
        format="elf",
        kind="pie-executable",
        arch="x86-64",
        libc="glibc",
        checks=(Check(name="glibc", state=state, evidence=evidence),),
        component=component,
        artifact=path.split("!", maxsplit=1)[0],
    )


def test_toolchain_interpreter_is_in_the_default_scope() -> None:
    """Files of the interpreter buildkit's toolchain built are gated with our own code;
    a host's interpreter and wheels are not."""
    built = _glibc_file("app!_ssl.so", Component.TOOLCHAIN, State.FAIL, "needs GLIBC_2.34: x")
    host = _glibc_file("app!_json.so", Component.INTERPRETER, State.FAIL, "needs GLIBC_2.34: x")
    gate = evaluate((built, host), Hardening(require=("glibc",), scope="own", waivers=()))
    assert [(v.path, v.outcome) for v in gate.verdicts] == [("app!_ssl.so", "fail")]


def test_policy_glibc_moves_the_baseline() -> None:
    """`[hardening] glibc = "2.28"`: a file that needs 2.28 passes, one that needs 2.34
    fails (named in the evidence); GLIBCXX keeps manylinux2014's limit."""
    files = (
        _glibc_file("a", Component.OWN, State.FAIL,
                    "needs GLIBC_2.28: newer than GLIBC_2.17 (older systems refuse to load it)"),
        _glibc_file("b", Component.OWN, State.FAIL,
                    "needs GLIBC_2.34: newer than GLIBC_2.17 (older systems refuse to load it)"),
        _glibc_file("c", Component.OWN, State.FAIL,
                    "needs GLIBC_2.17, GLIBCXX_3.4.30: newer than GLIBCXX_3.4.19 (older…)"),
        _glibc_file("d", Component.OWN, State.PASS, "needs GLIBC_2.14 (baseline GLIBC_2.17)"),
    )  # fmt: skip
    gate = evaluate(files, Hardening(require=("glibc",), scope="own", waivers=(), glibc="2.28"))
    assert {v.path: v.outcome for v in gate.verdicts} == {
        "a": "pass", "b": "fail", "c": "fail", "d": "pass"
    }  # fmt: skip
    assert all("(policy: glibc 2.28)" in v.evidence for v in gate.verdicts)
    plain = evaluate(files, Hardening(require=("glibc",), scope="own", waivers=()))
    assert {v.path: v.outcome for v in plain.verdicts} == {
        "a": "fail", "b": "fail", "c": "fail", "d": "pass"
    }  # fmt: skip


@pytest.mark.parametrize("value", ["2.x", "3.1", "2.17.1", "glibc 2.28"])
def test_policy_glibc_must_be_a_version(tmp_path: Path, value: str) -> None:
    bad = tmp_path / "policy.toml"
    bad.write_text(f'[hardening]\nrequire = ["glibc"]\nglibc = "{value}"\n')
    with pytest.raises(RecipeError, match=r"\[hardening\].glibc.*must be a glibc version"):
        load_policy(bad)
