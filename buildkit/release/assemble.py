"""`buildkit release assemble OUT DIR…`: one release out of the folders per-target CI jobs
produced.

Each input must verify on its own first (checksums, manifest, SBOM, provenance, gate).
Artifacts are merged by name: the same name with different bytes is a conflict and
nothing is written. The merged release gets one manifest, and its SBOM, provenance and
hardening reports are made again from the merged manifest and artifacts: every artifact is
audited again and gated with the policy the inputs recorded (they must agree). The result
is assembled in a temporary sibling folder and renamed into place, and does not depend on
the order of the inputs.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..audit.report import policy_from_document
from ..errors import CheckFailed, InputError
from ..fsutil import loads_bounded, output_errors, read_regular
from . import checksums, documents, manifest, sign, stage
from .documents import is_document
from .manifest import ArtifactRecord
from .verify import MAX_DOCUMENT, verify

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Assembled:
    out: Path
    artifacts: tuple[str, ...]
    inputs: tuple[Path, ...]
    files: tuple[Path, ...]  # every file written, SHA256SUMS last but one, then its signature

    def to_json(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "inputs": [str(p) for p in self.inputs],
            "artifacts": list(self.artifacts),
            "files": [str(p) for p in self.files],
        }


def _canonical(entry: ArtifactRecord) -> str:
    return json.dumps(entry.to_dict(), sort_keys=True)


def assemble(out: Path, inputs: Sequence[Path], *, sign_key: Path | None = None) -> Assembled:
    if not inputs:
        raise InputError("release assemble needs at least one release folder")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(
            f"{out} already exists and is not an empty folder",
            hint="assemble into a new folder; nothing was written",
        )
    folders = sorted({p.resolve() for p in inputs}, key=str)
    if out.resolve() in folders:
        raise InputError(f"{out} is also an input", hint="assemble into a new folder")
    artifacts: dict[str, tuple[str, Path]] = {}
    entries: dict[str, ArtifactRecord] = {}
    policies: dict[str, tuple[str, Path]] = {}
    for folder in folders:
        _take(folder, artifacts, entries, policies)
    missing = sorted(set(entries) - set(artifacts))
    if missing:
        raise CheckFailed(f"manifest entries without their file: {', '.join(missing)}")
    built = [(source, entries[name]) for name, (_digest, source) in sorted(artifacts.items())]
    rules = {s: policy_from_document(json.loads(text)) for s, (text, _) in policies.items()}
    # Published into a temporary sibling, renamed into place: on any error nothing is
    # written (a rejected audit goes with the sibling).
    tmp = out.parent / f".{out.name}.assembling-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        try:
            stage.release(tmp, built, policies=rules, sign_key=sign_key)
        except stage.GateFailed as exc:
            raise CheckFailed(
                f"the merged release fails its hardening gate: {exc.verdict}",
                hint="a waiver may have expired since the inputs were built; nothing was written",
            ) from None
        with output_errors(out.parent):
            if out.exists():
                out.rmdir()
            tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("assembled %d artifact(s) into %s", len(artifacts), out, extra={"step": "release"})
    return Assembled(
        out=out,
        artifacts=tuple(sorted(artifacts)),
        inputs=tuple(folders),
        files=tuple(out / p.name for p in _written(out)),
    )


def _take(
    folder: Path,
    artifacts: dict[str, tuple[str, Path]],
    entries: dict[str, ArtifactRecord],
    policies: dict[str, tuple[str, Path]],
) -> None:
    """Check one input and merge what it holds; refuse conflicts with what came before."""
    checked = verify(folder)
    if not checked.ok:
        raise CheckFailed(
            f"{folder} does not verify: {checked.headline()}",
            hint=f"run `buildkit verify {folder}`; nothing was written",
        )
    listed = checksums.parse((folder / checksums.FILENAME).read_text("utf-8"), folder)
    for name, digest in listed.items():
        if is_document(name):
            continue
        if name in artifacts and artifacts[name][0] != digest:
            other = artifacts[name][1].parent
            raise InputError(
                f"conflict: {name} differs between {other} and {folder} "
                f"(sha256 {artifacts[name][0][:16]}… vs {digest[:16]}…)",
                hint="the same artifact must come from one job only, or build reproducibly; "
                "nothing was written",
            )
        artifacts.setdefault(name, (digest, folder / name))
    mine = manifest.read(folder)
    for name, entry in mine.items():
        if name in entries and _canonical(entries[name]) != _canonical(entry):
            log.warning("%s: manifest entries differ between inputs; keeping one", name)
        entries[name] = min(entries.get(name, entry), entry, key=_canonical)
    for recipe, version in documents.by_release(mine):
        stem = f"{recipe}-{version}"
        doc = loads_bounded(read_regular(folder / f"{stem}.hardening.json", MAX_DOCUMENT))
        policy = json.dumps(
            {k: doc["policy"].get(k) for k in ("require", "scope", "waivers")}, sort_keys=True
        )
        if stem in policies and policies[stem][0] != policy:
            raise InputError(
                f"conflict: the hardening policy of {stem} differs between "
                f"{policies[stem][1]} and {folder}",
                hint="build every target from the same recipe; nothing was written",
            )
        policies.setdefault(stem, (policy, folder))


def _written(out: Path) -> list[Path]:
    """Every file of the assembled release, SHA256SUMS last but one, then its signature."""
    last = (checksums.FILENAME, sign.FILENAME)
    return sorted(
        out.iterdir(),
        key=lambda p: (p.name in last, last.index(p.name) if p.name in last else 0, p.name),
    )
