"""The release stage: the one entrance from built artifacts to a release folder.

``release()`` owns the sequence: audit the new artifacts → gate them with their
recipe's policy → (rejected: the audit is written as ``<stem>.rejected.hardening.*`` and
nothing is published) → hardening reports of every artifact of each recipe version in
the folder → SBOM and provenance → manifest.json and SHA256SUMS → signature. Every file
is written by ``publish`` (a staging folder inside the release folder, renamed into
place, under the folder's lock); the rejected reports by ``publish.put`` under the same
lock. ``build``, ``release assemble`` and ``audit --out`` come through here.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..audit import output, packages
from ..audit.baseline import Baseline, compare
from ..audit.policy import GateResult, evaluate
from ..audit.report import gate_line
from ..audit.run import AuditResult, audit_paths
from ..errors import CheckFailed
from ..recipe import Hardening
from . import documents, natives, publish, sign
from .manifest import ArtifactRecord

log = logging.getLogger(__name__)


class GateFailed(CheckFailed):
    """The new artifacts failed their gate, or one could not be read (exit 1)."""

    def __init__(self, message: str, *, verdict: str, hint: str) -> None:
        super().__init__(message, hint=hint)
        self.verdict = verdict


@dataclass(frozen=True, kw_only=True)
class Released:
    out: Path
    checksums: Path
    manifest: Path
    gates: dict[str, GateResult]  # by recipe version stem (``<recipe>-<version>``)
    reports: tuple[Path, ...]  # the hardening reports written, in the release folder
    signature: Path | None  # SHA256SUMS.sig, when there is one


def release(
    out: Path,
    built: Sequence[tuple[Path, ArtifactRecord]],
    *,
    policies: Mapping[str, Hardening],
    sign_key: Path | None = None,
    unvouched: Mapping[str, str] | None = None,
    baseline: Baseline | None = None,
) -> Released:
    """Gate ``built`` (``(source, record)`` pairs) with ``policies`` (by stem), then
    publish them into ``out`` with every document, signed with ``sign_key``. A failed
    gate or an unreadable artifact raises CheckFailed (exit 1) with nothing published."""
    if sign_key is not None:
        sign.check_key(sign_key)  # before the audit: an unusable key wastes no work
    names = {source: record.name for source, record in built}
    log.info("auditing %d artifact(s)", len(built), extra={"step": "audit"})
    fresh, built = _traced(audit_paths([source for source, _ in built], names), built)
    gates = {}
    for name in sorted({r.stem for _, r in built}):
        mine = {r.name for _, r in built if r.stem == name}
        gates[name] = _evaluate(fresh, mine, policies[name])
    _refuse_rejected(out, fresh, gates, baseline)
    for gate in gates.values():
        log.info(gate_line(gate), extra={"step": "audit"})
    docs = _Documents(out=out, fresh=fresh, policies=policies, baseline=baseline)
    sums, manifest_path = publish.publish(
        out,
        built,
        extra=docs.write,
        retire=[f"{s}.rejected.hardening.{f}" for s in gates for f in output.FORMATS],
        sign_key=sign_key,
        unvouched=unvouched,
    )
    signature = out / sign.FILENAME
    return Released(
        out=out,
        checksums=sums,
        manifest=manifest_path,
        gates=gates,
        reports=tuple(docs.reports),
        signature=signature if signature.exists() else None,
    )


def _traced(
    fresh: AuditResult, built: Sequence[tuple[Path, ArtifactRecord]]
) -> tuple[AuditResult, list[tuple[Path, ArtifactRecord]]]:
    """The system libraries in artifacts built here traced to this host's packages, and
    every record with its native files (a record that has them keeps them: it was built,
    and its libraries traced, on another machine)."""
    here = {r.name for _, r in built if r.natives is None}
    traced = natives.applied(packages.resolve(fresh, only=here), {r.name: r for _, r in built})
    return traced, [
        (s, r if r.natives is not None else replace(r, natives=natives.rows(traced.files, r.name)))
        for s, r in built
    ]


def _evaluate(result: AuditResult, artifacts: set[str], policy: Hardening) -> GateResult:
    files = tuple(f for f in result.files if f.artifact in artifacts)
    unreadable = tuple(p.path for p in result.problems if p.artifact in artifacts)
    return evaluate(files, policy, unreadable=unreadable)


def _refuse_rejected(
    out: Path, fresh: AuditResult, gates: Mapping[str, GateResult], baseline: Baseline | None
) -> None:
    """A failed gate or an unreadable artifact: its audit is written beside the release
    (``<stem>.rejected.hardening.*``, through the writer's lock) and nothing is published."""
    unreadable = [p.path for p in fresh.problems] + [f.path for f in fresh.unparseable]
    failed = {s: g for s, g in gates.items() if not g.passed}
    if not failed and not unreadable:
        return
    texts: dict[str, str] = {}
    for name, gate in (failed or gates).items():
        diff = compare(fresh, baseline) if baseline is not None else None
        texts.update(output.texts(f"{name}.rejected", fresh, gate, root=out, baseline=diff))
    written = publish.put(out, texts)
    first = next(iter(failed.values()), None)
    message = gate_line(first) if first else f"unreadable: {', '.join(unreadable)}"
    raise GateFailed(
        message + "; nothing was published",
        verdict=message,
        hint=f"see {written[-1]}; fix the flags or add a [[hardening.waivers]] entry "
        "with a reason and an expiry date",
    )


@dataclass(kw_only=True)
class _Documents:
    """What publish stages beside the artifacts: for each recipe version just built, the
    hardening reports of all its artifacts in the folder (the new ones were audited by the
    gate; only earlier ones are read again); then the SBOM and provenance of every recipe
    version in the folder."""

    out: Path
    fresh: AuditResult
    policies: Mapping[str, Hardening]
    baseline: Baseline | None = None
    reports: list[Path] = field(default_factory=list)

    def write(self, entries: dict[str, ArtifactRecord], staging: Path) -> list[Path]:
        by_stem: dict[str, list[str]] = defaultdict(list)
        for name, entry in entries.items():
            by_stem[entry.stem].append(name)
        staged: list[Path] = []
        for name, policy in sorted(self.policies.items()):
            result = natives.applied(self._audit(sorted(by_stem.get(name, ())), staging), entries)
            files = result.files
            gate = evaluate(files, policy, unreadable=tuple(p.path for p in result.problems))
            diff = compare(result, self.baseline) if self.baseline is not None else None
            texts = output.texts(name, result, gate, root=self.out, baseline=diff)
            for report, text in texts.items():
                staged.append(publish.stage_text(staging, report, text))
        self.reports = [self.out / p.name for p in staged]
        return staged + documents.write(staging, entries)

    def _audit(self, names: list[str], staging: Path) -> AuditResult:
        done = {r.artifact for r in self.fresh.files} | {p.artifact for p in self.fresh.problems}
        mine = [n for n in names if n in done]
        older = [n for n in names if n not in done]
        # an artifact copied for this publish is still in staging; the others are in out
        where = {n: staging / n if (staging / n).is_file() else self.out / n for n in older}
        earlier = audit_paths([where[n] for n in older], {where[n]: n for n in older})
        fresh = [f for f in self.fresh.files if f.artifact in mine]
        return AuditResult(
            files=tuple(
                sorted(
                    (*fresh, *earlier.files),
                    key=lambda r: (r.artifact, r.path != r.artifact, r.path),
                )
            ),
            problems=tuple(p for p in self.fresh.problems if p.artifact in mine) + earlier.problems,
            not_audited=tuple(n for n in self.fresh.not_audited if n.path in mine)
            + earlier.not_audited,
        )
