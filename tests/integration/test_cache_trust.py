"""A cache someone else wrote (issue 38, items 2 and 3), done by hand as an attacker
would: a cached zipapp rebuilt with one line added and its build info kept, stored as a
blob and named by the action entry; check results widened. The next build neither runs
nor publishes them; a cache others can write is refused."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import pytest

from buildkit.release import checksums
from tests.conftest import RECIPES
from tests.integration.conftest import buildkit

pytestmark = pytest.mark.integration

NAME = "portcheck-1.0.0-linux-amd64.pyz"
PROFILE = "portcheck-1.0.0-linux-amd64.seccomp.json"


def build(out: Path, cache: Path, *, check: bool = True):  # type: ignore[no-untyped-def]
    return buildkit("build", RECIPES / "portcheck", "--format", "shiv", "--target",
                    "linux-amd64", "--out", out, "--cache-dir", cache, check=check)  # fmt: skip


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def forged_pyz(genuine: Path, dest: Path, mark: Path) -> None:
    """The genuine zipapp with one line added to the program, everything else (the
    launcher before the zip, ``__buildkit__.json``) copied as it is."""
    data = genuine.read_bytes()
    dest.write_bytes(data[: data.find(b"PK\x03\x04")])
    with zipfile.ZipFile(genuine) as src, zipfile.ZipFile(dest, "a") as out:
        hit = False
        for info in src.infolist():
            member = src.read(info)
            if info.filename.endswith("portcheck/cli.py"):
                member += f"\nopen({str(mark)!r}, 'w').write('ran')\n".encode()
                hit = True
            out.writestr(info, member)
        assert hit, "no portcheck/cli.py in the zipapp"


def test_a_forged_cache_entry_is_neither_run_nor_published(tmp_path: Path) -> None:
    cache, first = tmp_path / "cache", tmp_path / "first"
    build(first, cache)
    genuine = sha(first / NAME)
    (entry,) = [
        p
        for p in (cache / "actions").rglob("*.json")
        if json.loads(p.read_text())["sha256"] == genuine
    ]
    mark = tmp_path / "forged-code-ran"
    evil = tmp_path / "evil.pyz"
    forged_pyz(first / NAME, evil, mark)
    digest = sha(evil)
    blob = cache / "blobs" / digest[:2] / digest
    blob.parent.mkdir(parents=True, exist_ok=True)
    os.replace(evil, blob)
    doc = json.loads(entry.read_text())
    entry.write_text(json.dumps({**doc, "sha256": digest}))
    # and every stored check result widened: ptrace and process_vm_writev allowed
    proofs = sorted((cache / "proofs").rglob("*.json"))
    assert proofs
    for proof in proofs:
        kept = json.loads(proof.read_text())
        syscalls = kept.get("proof", kept)["syscalls"]  # (unsealed before this change)
        syscalls["allowed"] += ["ptrace", "process_vm_writev", "bpf"]
        proof.write_text(json.dumps(kept))

    again = tmp_path / "again"
    proc = build(again, cache)
    assert f"refused cache entry {entry}" in proc.stderr, proc.stderr
    for proof in proofs:
        assert f"refused cache entry {proof}" in proc.stderr, proc.stderr
    assert not mark.exists(), "the forged program ran during the checks"
    assert sha(again / NAME) == genuine
    listed = checksums.parse((again / "SHA256SUMS").read_text(), again)
    assert listed[NAME] == genuine
    assert (again / PROFILE).read_bytes() == (first / PROFILE).read_bytes()
    assert "ptrace" not in (again / PROFILE).read_text()
    buildkit("verify", again)


def test_a_cache_others_can_write_is_refused_before_anything_runs(tmp_path: Path) -> None:
    cache, first = tmp_path / "cache", tmp_path / "first"
    build(first, cache)
    for folder, dirs, files in os.walk(cache):  # chmod -R a+rwX
        for name in [*dirs, *files]:
            path = Path(folder) / name
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | 0o666 | (0o111 if path.is_dir() else 0))
    cache.chmod(0o777)
    out = tmp_path / "again"
    proc = build(out, cache, check=False)
    assert proc.returncode == 2, proc.stderr
    assert f"cache folder {cache} can be written by other users" in proc.stderr
    assert "chmod -R o-w" in proc.stderr
    assert not out.exists()
