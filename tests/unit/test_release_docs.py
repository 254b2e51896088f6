"""The SBOM and the provenance statement, made from manifest entries (no tools run)."""

from __future__ import annotations

import json

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from google.protobuf import json_format
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.statement import Statement

from buildkit.release import provenance, sbom
from buildkit.release.manifest import ArtifactRecord

PSUTIL_AMD64 = "psutil-7.2.2-cp36-abi3-manylinux2010_x86_64.manylinux_2_12_x86_64.whl"
PSUTIL_DARWIN = "psutil-7.2.2-cp36-abi3-macosx_11_0_arm64.whl"


def entry(name: str, target: str, fmt: str, wheel: str, digest: str) -> ArtifactRecord:
    settings = {"mode": "onefile", "interpreter": "CPython 3.11.7"} if fmt == "nuitka" else {}
    tools = {"nuitka": "4.3.3", "gcc": "12.2.0"} if fmt == "nuitka" else {"pex": "2.105.2"}
    return ArtifactRecord.from_dict(
        {
            "name": name,
            "recipe": "hostmetrics",
            "version": "1.0.0",
            "target": target,
            "format": fmt,
            "python": "3.11",
            "sha256": digest * 64,
            "size": 10,
            "lock": f"lockfiles/hostmetrics/{target}.txt",
            "lock_digest": "sha256:" + "d" * 64,
            "inputs": {
                "sources_digest": "sha256:" + "5" * 64,
                "wheels": [f"{wheel} sha256:{'e' * 64 if 'x86' in wheel else 'f' * 64}"],
                "tools": tools,
                "settings": settings,
                "toolkit": "0.1.0",
                "recipe_digest": "sha256:" + "7" * 64,
            },
            "payload": {},
        },
        "test",
    )


ENTRIES = [
    entry("hostmetrics-1.0.0-linux-amd64", "linux-amd64", "nuitka", PSUTIL_AMD64, "a"),
    entry("hostmetrics-1.0.0-linux-amd64.pex", "linux-amd64", "pex", PSUTIL_AMD64, "b"),
    entry("hostmetrics-1.0.0-darwin-arm64.pex", "darwin-arm64", "pex", PSUTIL_DARWIN, "c"),
]


def test_sbom_valid_complete_and_deterministic() -> None:
    text = sbom.render("hostmetrics", "1.0.0", ENTRIES)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    assert text == sbom.render("hostmetrics", "1.0.0", list(reversed(ENTRIES)))
    doc = json.loads(text)
    assert doc["specVersion"] == "1.6" and doc["metadata"]["timestamp"].startswith("1980-01-01")
    by_ref = {c["bom-ref"]: c for c in doc["components"]}
    wheels = [c for c in doc["components"] if c.get("purl") == "pkg:pypi/psutil@7.2.2"]
    assert sorted(c["hashes"][0]["content"] for c in wheels) == ["e" * 64, "f" * 64]
    assert by_ref["interpreter:cpython@3.11.7"]["purl"] == "pkg:generic/cpython@3.11.7"
    assert by_ref["runtime:nuitka@4.3.3"]["purl"] == "pkg:pypi/nuitka@4.3.3"
    deps = {d["ref"]: set(d.get("dependsOn", [])) for d in doc["dependencies"]}
    assert deps["artifact:hostmetrics-1.0.0-linux-amd64"] == {
        "sources:sha256:" + "5" * 64,
        f"wheel:{PSUTIL_AMD64}",
        "interpreter:cpython@3.11.7",
        "runtime:nuitka@4.3.3",
    }
    assert deps["artifact:hostmetrics-1.0.0-darwin-arm64.pex"] == {
        "sources:sha256:" + "5" * 64,
        f"wheel:{PSUTIL_DARWIN}",
    }
    assert deps["release:hostmetrics@1.0.0"] == {f"artifact:{e.name}" for e in ENTRIES}
    # another input, another serial number
    other = sbom.render("hostmetrics", "1.0.0", ENTRIES[:2])
    assert json.loads(other)["serialNumber"] != doc["serialNumber"]


def test_provenance_is_an_in_toto_slsa_statement() -> None:
    text = provenance.render("hostmetrics", "1.0.0", ENTRIES, env={})
    assert text.endswith("\n") and text.count("\n") == 1
    assert text == provenance.render("hostmetrics", "1.0.0", ENTRIES[::-1], env={})
    statement = json_format.Parse(text, statement_pb2.Statement())
    Statement.copy_from_pb(statement).validate()
    assert {(s.name, s.digest["sha256"]) for s in statement.subject} == {
        (e.name, e.sha256) for e in ENTRIES
    }
    predicate = json_format.ParseDict(
        json.loads(text)["predicate"], provenance_pb2.Provenance(), ignore_unknown_fields=False
    )
    assert predicate.run_details.builder.id == provenance.LOCAL_BUILDER
    deps = {d.name: d for d in predicate.build_definition.resolved_dependencies}
    assert deps["lockfiles/hostmetrics/linux-amd64.txt"].digest["sha256"] == "d" * 64
    assert deps[PSUTIL_AMD64].uri == "pkg:pypi/psutil@7.2.2"
    assert deps[PSUTIL_DARWIN].digest["sha256"] == "f" * 64
    assert {"nuitka", "gcc", "pex", "cpython"} <= set(deps)
    # the Python running buildkit is no input: repro shows the same bytes under another
    assert "python" not in deps
    recipe = json.loads(text)["predicate"]["buildDefinition"]["externalParameters"]["recipe"]
    assert recipe["digests"] == [{"sha256": "7" * 64}]


def test_provenance_names_the_github_workflow() -> None:
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "ops/tools",
        "GITHUB_WORKFLOW_REF": "ops/tools/.github/workflows/release.yml@refs/tags/v1.0.0",
        "GITHUB_RUN_ID": "42",
        "GITHUB_RUN_ATTEMPT": "2",
    }
    run = json.loads(provenance.render("hostmetrics", "1.0.0", ENTRIES, env=env))["predicate"][
        "runDetails"
    ]
    assert run["builder"]["id"] == (
        "https://github.com/ops/tools/.github/workflows/release.yml@refs/tags/v1.0.0"
    )
    assert run["metadata"]["invocationId"] == (
        "https://github.com/ops/tools/actions/runs/42/attempts/2"
    )
