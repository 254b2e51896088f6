"""The release's provenance: an in-toto Statement v1 with an SLSA provenance v1 predicate,
one JSON line per recipe version (``<recipe>-<version>.intoto.jsonl``).

Subjects are the artifacts and their sha256. ``buildDefinition`` holds the recipe (its
digest) and each artifact's parameters (target, format, Python, backend settings);
``resolvedDependencies`` the lockfiles, the recipe's sources, every wheel with its digest
and the toolchain (build Python, pex, shiv, Nuitka, compiler versions).
``runDetails.builder.id`` names the GitHub Actions workflow when run there
(``GITHUB_WORKFLOW_REF``), a fixed local id otherwise.

Deterministic: built from the manifest entries only, no clock; the same entries on the
same builder give the same bytes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from .. import __version__, tools
from . import profiles
from .manifest import ArtifactRecord
from .wheels import interpreter_version, wheel_files

SUFFIX = ".intoto.jsonl"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "urn:buildkit:build:v1"
LOCAL_BUILDER = "urn:buildkit:builder:local"


def filename(stem: str) -> str:
    return stem + SUFFIX


def _digest(value: str) -> dict[str, str]:
    return {"sha256": value.removeprefix("sha256:")}


def builder(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``runDetails``: the GitHub Actions workflow run when there, a local id otherwise."""
    env = os.environ if env is None else env
    if env.get("GITHUB_ACTIONS") == "true" and env.get("GITHUB_WORKFLOW_REF"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com")
        run = (
            f"{server}/{env.get('GITHUB_REPOSITORY', '')}/actions/runs/"
            f"{env.get('GITHUB_RUN_ID', '')}/attempts/{env.get('GITHUB_RUN_ATTEMPT', '1')}"
        )
        return {
            "builder": {"id": f"{server}/{env['GITHUB_WORKFLOW_REF']}"},
            "metadata": {"invocationId": run},
        }
    return {"builder": {"id": LOCAL_BUILDER}}


def render(
    recipe: str,
    version: str,
    records: Sequence[ArtifactRecord],
    env: Mapping[str, str] | None = None,
) -> str:
    """The statement for ``recipe`` ``version`` from its manifest records (any order)."""
    entries = [r.to_dict() for r in sorted(records, key=lambda r: r.name)]
    dependencies: dict[str, dict[str, Any]] = {}

    def depend(key: str, item: dict[str, Any]) -> None:
        dependencies.setdefault(key, item)

    recipe_digests = sorted({str(e.get("inputs", {}).get("recipe_digest", "")) for e in entries})
    artifacts = []
    for entry in entries:
        inputs = entry.get("inputs", {})
        artifacts.append(
            {
                "name": entry["name"],
                "target": entry["target"],
                "format": entry["format"],
                "python": entry["python"],
                "settings": inputs.get("settings", {}),
            }
        )
        depend(
            "0 " + str(entry["lock"]),
            {"name": entry["lock"], "uri": entry["lock"], "digest": _digest(entry["lock_digest"])},
        )
        sources = str(inputs.get("sources_digest", ""))
        depend(
            "1 " + sources,
            {
                "name": f"{recipe} sources",
                "digest": _digest(sources),
                "annotations": {"digest": "sha256 over the sorted (path, sha256) list"},
            },
        )
        for wheel in wheel_files(entry):
            depend(
                "2 " + wheel.filename,
                {
                    "name": wheel.filename,
                    "uri": wheel.purl,
                    "digest": {"sha256": wheel.sha256},
                },
            )
        toolchain = [(t, str(v), "toolchain") for t, v in inputs.get("tools", {}).items()]
        if interpreter_version(entry):
            toolchain.append(("cpython", interpreter_version(entry), "compiled into the binary"))
        for tool, ver, role in toolchain:
            depend(
                f"3 {tool} {ver}",
                {"name": tool, "uri": f"pkg:generic/{tool}@{ver}", "annotations": {"role": role}},
            )
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": e["name"], "digest": _digest(str(e["sha256"]))} for e in entries]
        + [
            {"name": name, "digest": _digest(sha)}
            for name, sha in sorted(profiles.digests(records).items())
        ],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "recipe": {
                        "name": recipe,
                        "version": version,
                        "digests": [_digest(d) for d in recipe_digests if d],
                    },
                    "artifacts": artifacts,
                },
                "internalParameters": {
                    "toolkit": __version__,
                    "SOURCE_DATE_EPOCH": tools.SOURCE_DATE_EPOCH,
                },
                "resolvedDependencies": [dependencies[k] for k in sorted(dependencies)],
            },
            "runDetails": {**builder(env), **_checks(entries)},
        },
    }
    return json.dumps(statement, sort_keys=True, separators=(",", ":")) + "\n"


def _checks(entries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The recipe's checks as byproducts: what ran against each artifact, where, and how
    it ended (or why it could not run on this builder)."""
    found = [
        {"name": f"checks/{e['name']}", "annotations": e["checks"]}
        for e in entries
        if e.get("checks") is not None
    ]
    return {"byproducts": found} if found else {}
