"""The cache is input someone else may have written: what names a reused artifact or check
result is sealed with a key kept outside it, a cache others can write is refused, and
the key file is private or not used."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import pytest

from buildkit import cache as cache_module
from buildkit import cachekey
from buildkit.cache import Cache
from buildkit.errors import InputError
from buildkit.fsutil import sha256_file


@pytest.fixture(autouse=True)
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    monkeypatch.delenv(cachekey.ENV, raising=False)
    return home


def stored(tmp_path: Path, payload: bool = False) -> tuple[Cache, Path]:
    cache = Cache(root=tmp_path / "cache")
    art = tmp_path / "app.pyz"
    art.write_bytes(b"genuine")
    tree = None
    if payload:
        tree = tmp_path / "tree"
        (tree / "lib").mkdir(parents=True)
        (tree / "lib" / "x.so").write_bytes(b"\x7fELF")
    cache.store_artifact("k" * 64, art, tree, {"modules": 3})
    return cache, cache.root / "actions" / "kk" / f"{'k' * 64}.json"


def forge(cache: Cache, entry_path: Path, data: bytes) -> str:
    """What someone with write access does: store other bytes as a blob (named by their
    real digest) and point the action entry at them, keeping everything else."""
    evil = cache.root / "evil"
    evil.write_bytes(data)
    digest = sha256_file(evil)
    blob = cache.root / "blobs" / digest[:2] / digest
    blob.parent.mkdir(parents=True, exist_ok=True)
    os.replace(evil, blob)
    entry = json.loads(entry_path.read_text())
    entry["sha256"] = digest
    entry_path.write_text(json.dumps(entry))
    return digest


def test_a_sealed_entry_is_reused(tmp_path: Path) -> None:
    cache, _ = stored(tmp_path, payload=True)
    hit = Cache(root=cache.root).lookup_artifact("k" * 64)
    assert hit is not None and hit.path.read_bytes() == b"genuine"
    assert hit.payload is not None and hit.facts == {"modules": 3}
    assert Cache(root=cache.root).has_artifact(hit.sha256)


def test_a_forged_action_entry_is_a_miss_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache, entry = stored(tmp_path)
    digest = forge(cache, entry, b"genuine + one line")
    with caplog.at_level(logging.WARNING):
        assert Cache(root=cache.root).lookup_artifact("k" * 64) is None
    assert f"refused cache entry {entry}" in caplog.text
    # the forged blob is not "made here" either: a signing build cannot vouch for it
    assert not Cache(root=cache.root).has_artifact(digest)


def test_an_entry_sealed_with_another_key_is_a_miss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache, _ = stored(tmp_path)
    monkeypatch.setenv(cachekey.ENV, "another branch's secret, 32 chars or more")
    assert Cache(root=cache.root).lookup_artifact("k" * 64) is None
    sha = sha256_file(tmp_path / "app.pyz")
    assert not Cache(root=cache.root).has_artifact(sha)


def test_edited_facts_and_a_changed_packed_folder_are_refused(tmp_path: Path) -> None:
    cache, entry = stored(tmp_path, payload=True)
    doc = json.loads(entry.read_text())
    entry.write_text(json.dumps({**doc, "facts": {"modules": 4}}))
    assert Cache(root=cache.root).lookup_artifact("k" * 64) is None
    entry.write_text(json.dumps(doc))
    hit = Cache(root=cache.root).lookup_artifact("k" * 64)
    assert hit is not None and hit.payload is not None
    (hit.payload / "lib" / "x.so").write_bytes(b"\x7fELF but not hardened")
    assert Cache(root=cache.root).lookup_artifact("k" * 64) is None
    assert not hit.payload.exists()  # removed: the next build stores it again


def test_a_forged_check_result_is_a_miss(tmp_path: Path) -> None:
    cache = Cache(root=tmp_path / "cache")
    proof = {"status": "passed", "syscalls": {"allowed": ["read", "write"]}}
    cache.store_proof("p" * 64, proof)
    assert Cache(root=cache.root).lookup_proof("p" * 64) == proof
    path = cache.root / "proofs" / "pp" / f"{'p' * 64}.json"
    doc = json.loads(path.read_text())
    doc["proof"]["syscalls"]["allowed"] += ["ptrace", "process_vm_writev", "bpf"]
    path.write_text(json.dumps(doc))
    assert Cache(root=cache.root).lookup_proof("p" * 64) is None
    path.write_text(json.dumps({"status": "passed", "runs": []}))  # an unsealed result
    assert Cache(root=cache.root).lookup_proof("p" * 64) is None


@pytest.mark.parametrize("where", ["", "actions", "tools/ccache"])
def test_a_cache_others_can_write_is_refused(tmp_path: Path, where: str) -> None:
    cache, _ = stored(tmp_path)
    cache.tool_dir("ccache")
    (cache.root / where).chmod(0o777)
    cache_module._PRIVATE.clear()  # a later process
    with pytest.raises(InputError, match="can be written by other users") as err:
        Cache(root=cache.root).tmp_dir()
    assert str(cache.root / where).rstrip("/") in str(err.value)
    with pytest.raises(InputError):
        Cache(root=cache.root).lookup_artifact("k" * 64)


def test_a_cache_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to give a folder away")
    cache, _ = stored(tmp_path)
    os.chown(cache.root / "blobs", 65534, 65534)
    cache_module._PRIVATE.clear()  # a later process
    with pytest.raises(InputError, match=r"owned by another user \(uid 65534\)"):
        Cache(root=cache.root).tool_dir("nuitka")


def test_the_key_file_is_made_private_and_kept(tmp_path: Path, config_home: Path) -> None:
    key = cachekey.load(tmp_path / "cache")
    path = config_home / "buildkit" / "cache.key"
    assert key.lasting and key.source == str(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert cachekey.load(tmp_path / "cache").secret == key.secret


@pytest.mark.parametrize("case", ["readable", "link", "short", "inside"])
def test_an_unusable_key_file_means_nothing_is_reused(
    tmp_path: Path,
    config_home: Path,
    case: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache, _ = stored(tmp_path)
    path = config_home / "buildkit" / "cache.key"
    if case == "readable":
        path.chmod(0o644)
    elif case == "link":
        other = tmp_path / "elsewhere"
        other.write_text(path.read_text())
        path.unlink()
        path.symlink_to(other)
    elif case == "short":
        path.write_text("0123\n")
    else:
        monkeypatch.setenv("XDG_CONFIG_HOME", str(cache.root / "config"))
    with caplog.at_level(logging.WARNING):
        key = cachekey.load(cache.root)
        assert Cache(root=cache.root).lookup_artifact("k" * 64) is None
    assert not key.lasting
    assert "cannot be used" in caplog.text and "reuses nothing" in caplog.text


def test_a_short_key_in_the_environment_is_bad_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(cachekey.ENV, "too short")
    with pytest.raises(InputError, match="at least 32"):
        cachekey.load(tmp_path)


def test_tool_caches_written_under_another_key_are_emptied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """ccache's, Nuitka's and zig's caches hold code no seal covers: tools/ is used only
    as a build holding this key left it; one a job without the key wrote is emptied."""
    from buildkit import cache as cache_module

    cache = Cache(root=tmp_path / "cache")
    mine = cache.tool_dir("ccache") / "object.o"
    mine.write_bytes(b"compiled here")
    cache_module._VERIFIED.clear()  # a later process with the same key keeps it
    assert Cache(root=cache.root).tool_dir("ccache") == mine.parent and mine.is_file()
    cache_module._VERIFIED.clear()  # a restored cache, written by a job with another key
    monkeypatch.setenv(cachekey.ENV, "a pull request job's own key, 32 chars or more")
    with caplog.at_level(logging.WARNING):
        Cache(root=cache.root).tool_dir("zig")
    assert not mine.exists() and f"emptied {cache.root / 'tools'}" in caplog.text
