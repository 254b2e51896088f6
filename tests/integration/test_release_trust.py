"""Release trust: signed SHA256SUMS checked the way the README tells ops staff, `buildkit
verify`, the SBOM and provenance of a real build, and `release assemble`."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from google.protobuf import json_format
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.statement import Statement

from buildkit.lock import read as read_lock
from buildkit.release import profiles
from buildkit.release.documents import is_document
from tests.conftest import RECIPES, ROOT
from tests.integration.conftest import buildkit

pytestmark = pytest.mark.integration

IDENTITY = "release@example.org"
RECIPE = "hostmetrics"


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A throwaway signing key and the allowed_signers line ops staff would install."""
    folder = tmp_path_factory.mktemp("key")
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", IDENTITY, "-f", folder / "key"],
        check=True,
    )
    public = (folder / "key.pub").read_text().split()
    (folder / "allowed_signers").write_text(f"{IDENTITY} {public[0]} {public[1]}\n")
    return {"key": folder / "key", "allowed": folder / "allowed_signers"}


def build(out: Path, cache: Path, *extra: str | Path, recipe: Path = RECIPES / RECIPE) -> None:
    buildkit("build", recipe, "--format", "pex", "--format", "shiv", "--out", out,
             "--cache-dir", cache, *extra)  # fmt: skip


@pytest.fixture(scope="module")
def release(
    tmp_path_factory: pytest.TempPathFactory, cache_dir: Path, key: dict[str, Path]
) -> Path:
    out = tmp_path_factory.mktemp("signed") / "dist"
    build(out, cache_dir, "--target", "linux-amd64", "--sign-key", key["key"])
    return out


def ops_commands() -> str:
    """The copy-pasteable block of the README's "Checking a download" section."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- ops-check[^>]*-->\n```sh\n(.*?)```", text, re.S)
    assert block, "README has no ops-check block"
    return block.group(1)


def copy(release: Path, dest: Path, key: dict[str, Path]) -> Path:
    shutil.copytree(release, dest)
    shutil.copy(key["allowed"], dest / "allowed_signers")
    return dest


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def verify(folder: Path, key: dict[str, Path]) -> subprocess.CompletedProcess[str]:
    return buildkit("verify", folder, "--allowed-signers", key["allowed"],
                    "--identity", IDENTITY, check=False)  # fmt: skip


def test_readme_commands_pass_on_the_signed_release(release: Path, key: dict[str, Path], tmp_path: Path) -> None:  # fmt: skip
    folder = copy(release, tmp_path / "download", key)
    # a bastion host downloads only the binary and the two check files
    for path in folder.iterdir():
        if path.name.endswith(".pex") or path.name.endswith(".json"):
            path.unlink()
    proc = subprocess.run(["bash", "-e", "-c", ops_commands()], cwd=folder,
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert re.search(r"\.pyz: OK", proc.stdout)
    assert f'Good "file" signature for {IDENTITY}' in proc.stderr + proc.stdout
    assert "SHA256SUMS.sig" in verify(release, key).stdout
    assert verify(release, key).returncode == 0


@pytest.mark.parametrize("victim", ["artifact", "SHA256SUMS", "SHA256SUMS.sig"])
def test_one_flipped_byte_fails_the_readme_commands_and_verify(
    release: Path, key: dict[str, Path], tmp_path: Path, victim: str
) -> None:
    folder = copy(release, tmp_path / "download", key)
    if victim == "artifact":
        target = next(folder.glob("*-linux-amd64.pyz"))
        flip(target, target.stat().st_size // 2)
    elif victim == "SHA256SUMS":
        target = folder / victim
        flip(target, 3)  # inside the first digest
    else:
        target = folder / victim
        body = target.read_bytes().index(b"\n") + 40  # inside the base64 signature
        flip(target, body)
    proc = subprocess.run(["bash", "-e", "-c", ops_commands()], cwd=folder,
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert proc.returncode != 0, proc.stdout
    (folder / "allowed_signers").unlink()
    result = verify(folder, key)
    assert result.returncode == 1
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert any(target.name in line for line in failed), result.stdout


def test_verify_names_a_missing_an_unlisted_and_an_edited_file(
    release: Path, key: dict[str, Path], tmp_path: Path
) -> None:
    missing = copy(release, tmp_path / "missing", key)
    (missing / "allowed_signers").unlink()
    artifact = next(missing.glob("*.pex"))
    artifact.unlink()
    out = verify(missing, key)
    assert out.returncode == 1
    assert f"FAIL  checksum    {artifact.name}: listed but missing" in out.stdout
    assert f"FAIL  manifest    {artifact.name}: in manifest.json but missing" in out.stdout

    unlisted = copy(release, tmp_path / "unlisted", key)
    (unlisted / "allowed_signers").unlink()
    (unlisted / "hostmetrics-1.0.0-linux-amd64-fixed.pex").write_bytes(b"#!/bin/sh\n")
    out = verify(unlisted, key)
    assert out.returncode == 1
    assert "FAIL  unlisted    hostmetrics-1.0.0-linux-amd64-fixed.pex" in out.stdout

    edited = copy(release, tmp_path / "edited", key)
    (edited / "allowed_signers").unlink()
    manifest = edited / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"python": "3.11"', '"python": "3.12"', 1))
    out = verify(edited, key)
    assert out.returncode == 1
    assert "FAIL  checksum    manifest.json: sha256" in out.stdout

    # an edit that also rewrites SHA256SUMS: the manifest no longer matches the artifact,
    # and the signature no longer matches SHA256SUMS
    forged = copy(release, tmp_path / "forged", key)
    (forged / "allowed_signers").unlink()
    doc = json.loads((forged / "manifest.json").read_text())
    victim = doc["artifacts"][0]
    victim["sha256"] = "0" * 64
    (forged / "manifest.json").write_text(json.dumps(doc))
    sums = forged / "SHA256SUMS"
    digest = subprocess.run(["sha256sum", "manifest.json"], cwd=forged, capture_output=True,
                            text=True, check=True).stdout.split()[0]  # fmt: skip
    sums.write_text(re.sub(r"^\w+  manifest\.json$", f"{digest}  manifest.json",
                           sums.read_text(), flags=re.M))  # fmt: skip
    out = verify(forged, key)
    assert out.returncode == 1
    assert f"FAIL  manifest    {victim['name']}: sha256 differs from manifest.json" in out.stdout
    assert "FAIL  signature   SHA256SUMS.sig" in out.stdout
    assert "FAIL  sbom" in out.stdout and "FAIL  provenance" in out.stdout


ALLOW_ALL = '{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []}\n'


def test_a_planted_profile_is_never_signed_and_fails_verify(
    release: Path, key: dict[str, Path], tmp_path: Path, cache_dir: Path
) -> None:
    """An allow-all profile for a target the release has no binary for, listed in
    SHA256SUMS: a signing build refuses the folder, and verify fails it by name even
    when SHA256SUMS was signed with the team's key (sha256sum -c and ssh-keygen pass)."""
    planted = copy(release, tmp_path / "planted", key)
    (planted / "allowed_signers").unlink()
    name = f"{RECIPE}-1.0.0-linux-arm64.seccomp.json"
    (planted / name).write_text(ALLOW_ALL)
    digest = subprocess.run(["sha256sum", name], cwd=planted, capture_output=True, text=True,
                            check=True).stdout.split()[0]  # fmt: skip
    sums = planted / "SHA256SUMS"
    sums.write_text("".join(sorted([*sums.read_text().splitlines(True), f"{digest}  {name}\n"])))
    (planted / "SHA256SUMS.sig").unlink()
    subprocess.run(["ssh-keygen", "-q", "-Y", "sign", "-n", "file", "-f", key["key"], sums],
                   check=True, capture_output=True)  # fmt: skip
    subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=planted, check=True)
    out = verify(planted, key)
    assert out.returncode == 1, out.stdout
    assert f"FAIL  document    {name}: a release document manifest.json does not call for" in (
        out.stdout
    )

    before = {p.name: p.read_bytes() for p in planted.iterdir()}
    refused = buildkit("build", RECIPES / RECIPE, "--format", "pex", "--format", "shiv",
                       "--target", "linux-amd64", "--out", planted, "--cache-dir", cache_dir,
                       "--sign-key", key["key"], check=False)  # fmt: skip
    assert refused.returncode == 1, refused.stderr
    assert f"{name} (a release document no artifact of this release calls for)" in refused.stderr
    assert {p.name: p.read_bytes() for p in planted.iterdir()} == before


def test_sbom_and_provenance_of_a_real_build(release: Path) -> None:
    text = (release / f"{RECIPE}-1.0.0.cdx.json").read_text()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    components = json.loads(text)["components"]
    lock = read_lock(ROOT / "lockfiles" / RECIPE / "linux-amd64.txt")
    assert lock.requirements
    for req in lock.requirements:
        found = [c for c in components if c.get("purl") == f"pkg:pypi/{req.name}@{req.version}"]
        assert found, f"{req.name} {req.version} not in the SBOM"
        assert all(c["hashes"][0]["content"] in req.hashes for c in found)
    line = (release / f"{RECIPE}-1.0.0.intoto.jsonl").read_text()
    statement = json_format.Parse(line, statement_pb2.Statement())
    Statement.copy_from_pb(statement).validate()
    listed = dict(
        reversed(line.split("  ")) for line in (release / "SHA256SUMS").read_text().splitlines()
    )
    # the subjects: the artifacts and the seccomp profiles (outputs of the build too)
    artifacts = {
        n: d for n, d in listed.items() if not is_document(n) or n.endswith(profiles.SUFFIXES)
    }
    assert any(n.endswith(".seccomp.json") for n in artifacts)
    assert {s.name: s.digest["sha256"] for s in statement.subject} == artifacts


def test_two_builds_give_the_same_sbom_and_provenance(
    release: Path, tmp_path: Path, key: dict[str, Path]
) -> None:
    again = tmp_path / "again"
    build(again, tmp_path / "fresh-cache", "--target", "linux-amd64")
    for name in (f"{RECIPE}-1.0.0.cdx.json", f"{RECIPE}-1.0.0.intoto.jsonl"):
        assert (again / name).read_bytes() == (release / name).read_bytes(), name


def test_assemble_is_order_independent_and_refuses_conflicts(
    release: Path, tmp_path: Path, cache_dir: Path, key: dict[str, Path], recipe_copy
) -> None:
    darwin = tmp_path / "darwin"
    build(darwin, cache_dir, "--target", "darwin-arm64")
    one, two = tmp_path / "one", tmp_path / "two"
    buildkit("release", "assemble", one, release, darwin, "--sign-key", key["key"])
    buildkit("release", "assemble", two, darwin, release, "--sign-key", key["key"])
    names = sorted(p.name for p in one.iterdir())
    assert names == sorted(p.name for p in two.iterdir())
    assert any("darwin-arm64" in n for n in names) and any("linux-amd64" in n for n in names)
    for name in names:
        assert (one / name).read_bytes() == (two / name).read_bytes(), name
    assert verify(one, key).returncode == 0

    # the same artifact name with other bytes: a different source, same recipe version
    recipe = recipe_copy(RECIPE)
    cli = next((recipe / "src").rglob("cli.py"))
    cli.write_text(cli.read_text() + "\n# patched by another job\n")
    other = tmp_path / "other"
    build(other, cache_dir, "--target", "linux-amd64", recipe=recipe)
    out = tmp_path / "conflict"
    proc = buildkit("release", "assemble", out, release, other, check=False)
    assert proc.returncode == 2
    assert "conflict" in proc.stderr and str(other) in proc.stderr
    assert not out.exists()


def test_signing_key_never_leaks_and_verify_speaks_json(
    tmp_path: Path, cache_dir: Path, key: dict[str, Path]
) -> None:
    out = tmp_path / "dist"
    proc = buildkit("build", RECIPES / RECIPE, "--format", "pex", "--target", "linux-amd64",
                    "--out", out, "--cache-dir", cache_dir, "--sign-key", key["key"],
                    "-v", "--json")  # fmt: skip
    secret = [
        line
        for line in key["key"].read_text().splitlines()
        if line and not line.startswith("-----")
    ]
    assert secret
    written = [p.read_text(errors="replace") for p in out.iterdir()]
    for text in [proc.stdout, proc.stderr, *written]:
        assert not any(line in text for line in secret)
    assert json.loads(proc.stdout)["signature"] == str(out / "SHA256SUMS.sig")
    doc = json.loads(buildkit("verify", out, "--json").stdout)
    assert doc["ok"] is True
    assert {i["kind"] for i in doc["items"]} == {
        "checksum", "signature", "manifest", "contents", "sbom", "provenance", "hardening",
        "seccomp",
    }  # fmt: skip
    (signature,) = [i for i in doc["items"] if i["kind"] == "signature"]
    assert signature["warning"] and "signature not checked" in signature["detail"]
    # a build without the key that changes SHA256SUMS drops the stale signature
    buildkit("build", RECIPES / RECIPE, "--format", "shiv", "--target", "linux-amd64",
             "--out", out, "--cache-dir", cache_dir)  # fmt: skip
    assert not (out / "SHA256SUMS.sig").exists()
    assert buildkit("verify", out).returncode == 0
    failed = buildkit("verify", out, "--require-signature", "--allowed-signers", key["allowed"],
                      "--identity", IDENTITY, check=False)  # fmt: skip
    assert failed.returncode == 1 and "SHA256SUMS.sig is missing" in failed.stdout
