"""What changed since the last release: the audit compared, per native file and check,
with the hardening reports (``*.hardening.json``) of an earlier release folder. Files are
matched by their identity across versions (identity.py); a failure is *new* when the
baseline did not fail that check on that file (or had no such file), *unchanged* when it
did; a baseline failure that no longer fails is *fixed*. Only the artifacts this audit
has are compared: a release that adds a target is not told the old target's files were
fixed.

The baseline folder is hostile input: only regular files, each bounded in size; a report
that is not ours or not well formed is refused with the file and the key that is wrong."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from ..errors import InputError
from ..fsutil import (
    MAX_JSON_VALUES,
    NotRegular,
    escaped,
    json_values,
    loads_bounded,
    read_regular,
)
from .findings import State
from .identity import artifact_key, identity
from .run import AuditResult

MAX_REPORT = 32 << 20  # bytes of one baseline report (a real one: 100-200 KB)
MAX_REPORTS = 64  # reports in one baseline folder
#: JSON values of all the folder's reports together: memory stays bounded (about 100 MB)
#: however the reports are made.
MAX_VALUES = MAX_JSON_VALUES
SCHEMA = "buildkit-hardening/1"

NEW = "new"
UNCHANGED = "unchanged"
FIXED = "fixed"


@dataclass(frozen=True, kw_only=True)
class Change:
    identity: str  # the file across versions (identity.py)
    path: str  # as this audit (or, for a fixed one, the baseline) shows it
    check: str
    evidence: str


@dataclass(frozen=True, kw_only=True)
class Baseline:
    folder: str
    reports: tuple[str, ...]  # the report files read
    failing: dict[str, dict[str, tuple[str, str]]]  # identity -> check -> (path, evidence)
    seen: frozenset[str]  # every identity the baseline audited
    artifacts: frozenset[str]  # artifact keys the baseline audited


@dataclass(frozen=True, kw_only=True)
class Comparison:
    baseline: str  # the folder, as given
    new: tuple[Change, ...]
    fixed: tuple[Change, ...]
    unchanged: tuple[Change, ...]

    def state(self, key: str, check: str) -> str:
        """``new`` or ``unchanged`` for a failure of this audit."""
        return UNCHANGED if (key, check) in self._unchanged else NEW

    @cached_property
    def _unchanged(self) -> frozenset[tuple[str, str]]:
        return frozenset((c.identity, c.check) for c in self.unchanged)

    def summary(self) -> str:
        return (
            f"{len(self.new)} new failure(s), {len(self.fixed)} fixed, "
            f"{len(self.unchanged)} unchanged since {self.baseline}"
        )


def _bad(path: Path, key: str, what: str) -> InputError:
    return InputError(
        f"baseline report {escaped(str(path))}: {key}: {what}",
        hint="give the folder of an earlier buildkit release (it holds NAME-VERSION."
        "hardening.json), unchanged",
    )


def _read(path: Path, values: int) -> tuple[list[dict[str, object]], int]:
    """The report's file entries, checked, and how many JSON values it may hold (at most
    ``values``)."""
    try:
        raw = read_regular(path, MAX_REPORT)
    except (NotRegular, OSError) as exc:
        raise _bad(path, "file", str(exc)) from None
    try:
        doc = loads_bounded(raw, values)
    except (ValueError, RecursionError) as exc:
        raise _bad(path, "file", f"not JSON, or too large for a report ({exc})") from None
    if not isinstance(doc, dict) or doc.get("_schema") != SCHEMA:
        raise _bad(path, "_schema", f"not {SCHEMA!r}: not a buildkit hardening report")
    files = doc.get("files")
    if not isinstance(files, list):
        raise _bad(path, "files", "missing or not a list")
    for i, entry in enumerate(files):
        if not isinstance(entry, dict):
            raise _bad(path, f"files[{i}]", "not an object")
        for key in ("path", "artifact", "member"):
            if not isinstance(entry.get(key), str):
                raise _bad(path, f"files[{i}].{key}", "missing or not a string")
        checks = entry.get("checks")
        if not isinstance(checks, dict) or not all(
            isinstance(c, dict) and isinstance(c.get("state"), str) for c in checks.values()
        ):
            raise _bad(path, f"files[{i}].checks", "not an object of {state, evidence}")
    return files, json_values(raw)


def load(folder: Path) -> Baseline:
    """The failures recorded in a release folder's hardening reports."""
    if not folder.is_dir():
        raise InputError(
            f"--baseline {escaped(str(folder))}: not a folder",
            hint="give the folder of an earlier release (its NAME-VERSION.hardening.json)",
        )
    reports = sorted(
        p
        for p in folder.glob("*.hardening.json")
        if not p.name.endswith(".rejected.hardening.json")
    )
    if not reports:
        raise InputError(
            f"--baseline {escaped(str(folder))}: no *.hardening.json report in it",
            hint="a buildkit release folder has NAME-VERSION.hardening.json beside its artifacts",
        )
    if len(reports) > MAX_REPORTS:
        raise InputError(
            f"--baseline {escaped(str(folder))}: {len(reports)} reports, more than {MAX_REPORTS}",
            hint="give one release folder",
        )
    failing: dict[str, dict[str, tuple[str, str]]] = {}
    seen: set[str] = set()
    artifacts: set[str] = set()
    budget = MAX_VALUES
    for path in reports:
        files, used = _read(path, budget)
        budget -= used
        for entry in files:
            key = _identity(entry)
            seen.add(key)
            artifacts.add(artifact_key(str(entry["artifact"])))
            checks = entry["checks"]
            assert isinstance(checks, dict)  # _read checked it
            for check, value in checks.items():
                if value["state"] == State.FAIL.value:
                    evidence = str(value.get("evidence", ""))
                    failing.setdefault(key, {})[str(check)] = (str(entry["path"]), evidence)
    return Baseline(
        folder=str(folder),
        reports=tuple(p.name for p in reports),
        failing=failing,
        seen=frozenset(seen),
        artifacts=frozenset(artifacts),
    )


def _identity(entry: dict[str, object]) -> str:
    from .findings import FileReport

    probe = FileReport(
        path=str(entry["path"]),
        format="",
        kind="",
        arch="",
        libc="",
        checks=(),
        artifact=str(entry["artifact"]),
    )
    return identity(probe)


def compare(result: AuditResult, baseline: Baseline) -> Comparison:
    new: list[Change] = []
    unchanged: list[Change] = []
    now: dict[str, set[str]] = {}
    artifacts = set()
    for report in result.files:
        key = identity(report)
        artifacts.add(artifact_key(report.artifact or report.path))
        now[key] = set(report.failing)
        old = baseline.failing.get(key, {})
        for check in report.checks:
            if check.state is not State.FAIL:
                continue
            change = Change(
                identity=key, path=report.path, check=check.name, evidence=check.evidence
            )
            (unchanged if check.name in old else new).append(change)
    fixed = [
        Change(identity=key, path=path, check=check, evidence=evidence)
        for key, checks in sorted(baseline.failing.items())
        if key.split("!", 1)[0] in artifacts
        for check, (path, evidence) in sorted(checks.items())
        if check not in now.get(key, set())
    ]
    return Comparison(
        baseline=baseline.folder, new=tuple(new), fixed=tuple(fixed), unchanged=tuple(unchanged)
    )
