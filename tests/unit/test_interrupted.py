"""A publish cut short at every step, the cache's sweep of what stopped builds left."""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from pathlib import Path

import pytest

from buildkit.cache import Cache
from buildkit.release import publish as publish_module
from buildkit.release import sign
from buildkit.release.manifest import ArtifactRecord
from buildkit.release.publish import leftovers, listing_problems, publish


class Crash(BaseException):
    """Stands for SIGKILL: nothing after it runs (no except clause catches it)."""


def record(name: str, data: bytes) -> ArtifactRecord:
    return ArtifactRecord(
        name=name, recipe="demo", version="1.0", target="t", format="pex", python="3.11",
        sha256=hashlib.sha256(data).hexdigest(), size=len(data), lock="l", lock_digest="d",
        inputs={},
    )  # fmt: skip


def doc_writer(text: str):  # type: ignore[no-untyped-def]
    def extra(entries: dict[str, dict[str, object]], dest: Path) -> list[Path]:
        path = dest / "demo-1.0.cdx.json"
        path.write_text(text + ",".join(sorted(entries)))
        return [path]

    return extra


def release(tmp_path: Path, version: bytes) -> list[tuple[Path, ArtifactRecord]]:
    src = tmp_path / "src" / version.decode()
    src.mkdir(parents=True, exist_ok=True)
    built = []
    for name in ("demo-1.0-a.pex", "demo-1.0-b.pyz"):
        (src / name).write_bytes(name.encode() + version)
        built.append((src / name, record(name, name.encode() + version)))
    return built


def test_publish_stopped_at_every_step_keeps_the_listing_true(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rebuild v1 -> v2 and stop the publish after each of its file system steps (every
    rename; atomic writes rename too): the listing is true each time, and the next
    publish completes it."""
    real_replace = os.replace
    steps = 0
    while True:
        out = tmp_path / f"dist{steps}"
        publish(out, release(tmp_path, b"1"), extra=doc_writer("v1"))
        (out / sign.FILENAME).write_text("a signature of v1's SHA256SUMS\n")
        signed = (out / "SHA256SUMS").read_text()
        calls = 0

        def replace(a: object, b: object, _limit: int = steps) -> None:
            nonlocal calls
            if calls == _limit:
                raise Crash
            calls += 1
            real_replace(a, b)  # type: ignore[arg-type]

        monkeypatch.setattr(os, "replace", replace)
        try:
            publish(out, release(tmp_path, b"2"), extra=doc_writer("v2"))
            finished = True
        except Crash:
            finished = False
        monkeypatch.setattr(os, "replace", real_replace)
        assert listing_problems(out) == [], f"stopped after {steps} renames"
        if (out / sign.FILENAME).exists():  # a signature stays only over its own SHA256SUMS
            assert (out / "SHA256SUMS").read_text() == signed
        publish(out, release(tmp_path, b"2"), extra=doc_writer("v2"))
        assert listing_problems(out) == [] and leftovers(out) == []
        listed = (out / "SHA256SUMS").read_text()
        assert len(listed.splitlines()) == 4  # two artifacts, manifest, the document
        if finished:
            break
        steps += 1
    assert steps >= 8  # staged files, both listings, the interim manifest, the renames


def test_publish_removes_leftovers_of_a_stopped_build(tmp_path: Path) -> None:
    out = tmp_path / "dist"
    publish(out, release(tmp_path, b"1"))
    (out / f"{publish_module.STAGING_PREFIX}x").mkdir()
    (out / f"{publish_module.STAGING_PREFIX}x" / "demo-1.0-a.pex").write_bytes(b"half")
    (out / ".buildkit-part-demo-1.0-a.pex.abc.part").write_bytes(b"half")
    assert len(leftovers(out)) == 2
    publish(out, release(tmp_path, b"1"))
    assert leftovers(out) == [] and listing_problems(out) == []


def test_item08_publish_sweeps_only_its_own_temporary_names(tmp_path: Path) -> None:
    """Issue 16, item 8: a user's own ``.*.part`` files in --out survive a build."""
    out = tmp_path / "dist"
    out.mkdir()
    theirs = [out / ".notes.part", out / ".demo-1.0-a.pex.abc.part", out / ".buildkit.part"]
    for path in theirs:
        path.write_bytes(b"the user's")
    publish(out, release(tmp_path, b"1"))
    assert all(p.read_bytes() == b"the user's" for p in theirs)


def test_listing_problems_finds_torn_and_changed_files(tmp_path: Path) -> None:
    out = tmp_path / "dist"
    publish(out, release(tmp_path, b"1"))
    assert listing_problems(out) == []
    (out / "demo-1.0-a.pex").write_bytes(b"changed")
    assert len(listing_problems(out)) == 2  # its SHA256SUMS line and its manifest entry
    (out / "manifest.json").write_text('{"artifacts": [')
    assert any("torn" in p for p in listing_problems(out))


def test_sweep_removes_only_what_gone_processes_left(tmp_path: Path) -> None:
    cache = Cache(root=tmp_path / "cache")
    mine = cache.tmp_dir("fill-")
    base = cache.root / "tmp"
    (base / "deadbeef0001-x").mkdir()  # its owner lock is free: the process is gone
    (base / "owner-deadbeef0001.lock").touch()
    # A live build's owner lock, held here: flock locks belong to an open file, so the
    # sweep's own attempt (through another open) finds it taken, as from another process.
    holder = os.open(base / "owner-feedface0002.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        (base / "feedface0002-y").mkdir()  # another live build's fill
        (base / "tmpolder").mkdir()  # no owner: removed only when a day old
        (base / "tmpancient").mkdir()
        old = time.time() - 2 * 86400
        os.utime(base / "tmpancient", (old, old))
        assert cache.sweep_tmp() == 2
        left = sorted(p.name for p in base.iterdir())
        assert "deadbeef0001-x" not in left and "owner-deadbeef0001.lock" not in left
        assert "tmpancient" not in left
        assert {mine.name, "feedface0002-y", "tmpolder", "owner-feedface0002.lock"} <= set(left)
    finally:
        os.close(holder)
    assert cache.sweep_tmp() == 1  # the holder is gone now
    assert not (base / "feedface0002-y").exists() and mine.exists()
