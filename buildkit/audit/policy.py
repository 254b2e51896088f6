"""The hardening gate: a recipe's ``[hardening]`` table (or a policy file) applied to an
audit. Required checks must pass on every file in scope (``own``: code buildkit compiled,
the toolchain's interpreter included; ``all``: every native file); a waiver (path glob,
checks, reason, expiry) turns a failure into an accepted one until it expires, and an
expired waiver says so and no longer applies. A file that could not be parsed in scope
fails the gate.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from ..recipe import Hardening, Waiver
from .findings import GLIBC_BASELINE, Check, Component, FileReport, State

# policy check name -> (audit check, does this check state satisfy it?)
_Rule = tuple[str, Callable[[Check], bool]]
RULES: dict[str, _Rule] = {
    "relro-full": ("relro", lambda c: c.state is State.PASS),
    "relro-partial": (
        "relro",
        lambda c: c.state is State.PASS or c.evidence.startswith("partial"),
    ),
    "no-rpath": ("rpath", lambda c: c.state is State.PASS),
}
DEFAULT_RULE: Callable[[Check], bool] = lambda c: c.state is State.PASS  # noqa: E731


class Outcome:
    PASS = "pass"
    FAIL = "fail"
    WAIVED = "waived"
    NOT_APPLICABLE = "n/a"
    UNKNOWN = "unknown"


@dataclass(frozen=True, kw_only=True)
class Verdict:
    path: str
    requirement: str  # the policy's name for it (relro-full, no-rpath, ...)
    check: str  # the audit check it reads
    outcome: str
    evidence: str
    waiver: str = ""  # reason of the waiver that applied, or why one did not


@dataclass(frozen=True, kw_only=True)
class GateResult:
    require: tuple[str, ...]
    scope: str
    verdicts: tuple[Verdict, ...]
    unused_waivers: tuple[str, ...]
    waivers: tuple[Waiver, ...] = ()  # the policy's, so a report can be re-gated later
    glibc: str = ""  # the policy's glibc baseline, when it sets one
    unreadable: tuple[str, ...] = ()  # inputs that could not be read: never a pass

    @property
    def failures(self) -> tuple[Verdict, ...]:
        return tuple(v for v in self.verdicts if v.outcome == Outcome.FAIL)

    @property
    def waived(self) -> tuple[Verdict, ...]:
        return tuple(v for v in self.verdicts if v.outcome == Outcome.WAIVED)

    @property
    def passed(self) -> bool:
        return not self.failures and not self.unreadable

    def summary(self) -> str:
        counts = {o: 0 for o in ("pass", "fail", "waived", "n/a", "unknown")}
        for v in self.verdicts:
            counts[v.outcome] += 1
        parts = [f"{n} {o}" for o, n in counts.items() if n]
        parts += [f"{len(self.unreadable)} unreadable"] * bool(self.unreadable)
        return ", ".join(parts) or "nothing in scope"


def in_scope(report: FileReport, scope: str) -> bool:
    """``own``: what buildkit compiled (the recipe's code and, in a binary built with the
    hermetic toolchain, the interpreter and its libraries); ``all``: every native file."""
    return scope == "all" or report.component in (Component.OWN, Component.TOOLCHAIN)


def _matches(waiver: Waiver, report: FileReport, requirement: str, check: str) -> bool:
    if waiver.checks and requirement not in waiver.checks and check not in waiver.checks:
        return False
    # The glob matches the whole path, or its tail from any folder down: "psutil/*.so"
    # matches ".deps/psutil-7.0.0-....whl/psutil/_psutil_linux.abi3.so" in a pex.
    parts = report.path.replace("!", "/").split("/")
    tails = ("/".join(parts[i:]) for i in range(len(parts)))
    return fnmatch.fnmatchcase(report.path, waiver.path) or any(
        fnmatch.fnmatchcase(t, waiver.path) for t in tails
    )


def evaluate(
    files: tuple[FileReport, ...],
    policy: Hardening,
    *,
    today: dt.date | None = None,
    unreadable: tuple[str, ...] = (),
) -> GateResult:
    """The policy's verdict on ``files``; ``unreadable`` inputs (archives or files that
    could not be read) fail the gate: what was not seen cannot pass."""
    today = today or dt.date.today()
    used: set[int] = set()
    verdicts: list[Verdict] = []
    for report in files:
        if not in_scope(report, policy.scope):
            continue
        parse = report.check("parse")
        if parse is not None:
            verdicts.append(
                Verdict(
                    path=report.path,
                    requirement="parse",
                    check="parse",
                    outcome=Outcome.FAIL,
                    evidence=parse.evidence,
                )
            )
            continue
        for requirement in policy.require:
            name, rule = RULES.get(requirement, (requirement, DEFAULT_RULE))
            check = report.check(name)
            if check is None or check.state is State.NOT_APPLICABLE:
                evidence = check.evidence if check else f"not a {report.format} check"
                verdicts.append(
                    Verdict(
                        path=report.path,
                        requirement=requirement,
                        check=name,
                        outcome=Outcome.NOT_APPLICABLE,
                        evidence=evidence,
                    )
                )
                continue
            if requirement == "glibc" and policy.glibc:
                check = _rebased(check, policy.glibc)
            if rule(check):
                outcome, note = Outcome.PASS, ""
            elif check.state is State.UNKNOWN:
                outcome, note = Outcome.UNKNOWN, ""
            else:
                outcome, note = _waive(
                    policy,
                    report=report,
                    requirement=requirement,
                    check=name,
                    today=today,
                    used=used,
                )
            verdicts.append(
                Verdict(
                    path=report.path,
                    requirement=requirement,
                    check=name,
                    outcome=outcome,
                    evidence=check.evidence,
                    waiver=note,
                )
            )
    unused = tuple(
        f"{w.path} ({', '.join(w.checks) or 'all checks'}): matched nothing"
        for i, w in enumerate(policy.waivers)
        if i not in used
    )
    return GateResult(
        require=policy.require,
        scope=policy.scope,
        verdicts=tuple(verdicts),
        unused_waivers=unused,
        waivers=policy.waivers,
        unreadable=unreadable,
        glibc=policy.glibc,
    )


_NEEDS = re.compile(r"^needs ([A-Z0-9_., ]+?)(?::| \(|$)")
_VERSIONED = re.compile(r"(GLIBC|GLIBCXX|CXXABI)_(\d+(?:\.\d+)*)")


def _rebased(check: Check, baseline: str) -> Check:
    """The glibc check judged against the policy's glibc instead of the targets' (from
    the versions its evidence names; libstdc++'s limits stay manylinux2014's)."""
    m = _NEEDS.match(check.evidence)
    if check.state not in (State.PASS, State.FAIL) or m is None:
        return check
    limits = {**GLIBC_BASELINE, "GLIBC": tuple(int(p) for p in baseline.split("."))}
    needed = [(k, tuple(int(p) for p in v.split("."))) for k, v in _VERSIONED.findall(m[1])]
    ok = all(v <= limits[k] for k, v in needed)
    state = State.PASS if ok else State.FAIL
    return replace(check, state=state, evidence=f"{check.evidence} (policy: glibc {baseline})")


def _waive(
    policy: Hardening,
    *,
    report: FileReport,
    requirement: str,
    check: str,
    today: dt.date,
    used: set[int],
) -> tuple[str, str]:
    expired = ""
    for index, waiver in enumerate(policy.waivers):
        if not _matches(waiver, report, requirement, check):
            continue
        used.add(index)
        if waiver.expires < today:
            expired = f"waiver {waiver.path!r} expired on {waiver.expires}: no longer applies"
            continue
        return Outcome.WAIVED, f"{waiver.reason} (waiver {waiver.path!r} until {waiver.expires})"
    return Outcome.FAIL, expired
