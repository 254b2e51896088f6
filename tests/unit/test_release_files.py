from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import pytest

from buildkit import buildinfo
from buildkit.buildinfo import BuildInfo
from buildkit.cache import Cache
from buildkit.errors import CheckFailed, InputError
from buildkit.fsutil import atomic_path, atomic_write_text, sha256_file
from buildkit.release import checksums, manifest
from buildkit.release.manifest import ArtifactRecord
from buildkit.release.publish import listing_problems, publish, put
from buildkit.release.verify import verify


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_sha256sums_gnu_format(tmp_path: Path) -> None:
    files = {"b.pyz": b"bbb", "a.pex": b"aaa", "c-1.0-linux-amd64": b"ccc"}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    path = checksums.write(tmp_path, {n: sha(d) for n, d in files.items()})
    text = path.read_bytes().decode()
    assert text.splitlines() == [f"{sha(files[n])}  {n}" for n in sorted(files)]
    assert text.endswith("\n") and "\r" not in text
    assert checksums.parse(text, path) == {n: sha(d) for n, d in files.items()}
    with pytest.raises(CheckFailed, match="SHA256SUMS:1"):
        checksums.parse("nonsense\n", path)


def test_atomic_path_leaves_nothing_on_failure(tmp_path: Path) -> None:
    dest = tmp_path / "artifact.pex"
    dest.write_bytes(b"old release")
    with pytest.raises(RuntimeError), atomic_path(dest) as tmp:
        tmp.write_bytes(b"half of a new")
        raise RuntimeError("killed mid-write")
    assert dest.read_bytes() == b"old release"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artifact.pex"]


def test_cache_refuses_changed_wheel(tmp_path: Path) -> None:
    cache = Cache(root=tmp_path / "cache")
    wheel = tmp_path / "demo-1.0-py3-none-any.whl"
    wheel.write_bytes(b"wheel bytes")
    digest = sha(b"wheel bytes")
    cached = cache.add_wheel(wheel, digest)
    assert cache.verified_wheel(digest) == cached
    cached.write_bytes(b"tampered")
    assert cache.verified_wheel(digest) is None
    assert cache.find_wheel(digest) is None  # dropped, never trusted again


def test_action_cache_refuses_changed_blob(tmp_path: Path) -> None:
    cache = Cache(root=tmp_path / "cache")
    art = tmp_path / "out.pex"
    art.write_bytes(b"artifact")
    stored = cache.store_artifact("k" * 64, art)
    found = cache.lookup_artifact("k" * 64)
    assert found == stored and found.path.read_bytes() == b"artifact" and found.payload is None
    found.path.write_bytes(b"evil")
    assert cache.lookup_artifact("k" * 64) is None
    assert cache.lookup_artifact("z" * 64) is None


def test_action_cache_keeps_the_packed_folder(tmp_path: Path) -> None:
    cache = Cache(root=tmp_path / "cache")
    art, folder = tmp_path / "binary", tmp_path / "dist"
    art.write_bytes(b"native")
    folder.mkdir()
    (folder / "lib.so").write_bytes(b"elf")
    stored = cache.store_artifact("k" * 64, art, folder)
    assert stored.payload is not None and (stored.payload / "lib.so").read_bytes() == b"elf"
    assert cache.lookup_artifact("k" * 64) == stored
    shutil.rmtree(stored.payload)  # the folder is gone: not a hit, the build runs again
    assert cache.lookup_artifact("k" * 64) is None


def test_action_cache_keeps_what_the_build_proved_and_refuses_other_shapes(
    tmp_path: Path,
) -> None:
    cache = Cache(root=tmp_path / "cache")
    art = tmp_path / "binary"
    art.write_bytes(b"native")
    proved = {"modules": 412, "data": 9, "skipped": 3}
    stored = cache.store_artifact("k" * 64, art, None, proved)
    assert cache.lookup_artifact("k" * 64) == stored and stored.facts == proved
    action = next((tmp_path / "cache" / "actions").rglob("*.json"))
    for bad in ({"modules": "412"}, ["modules"], {"modules": 1.5}):
        entry = json.loads(action.read_text())
        action.write_text(json.dumps({**entry, "facts": bad}))
        assert cache.lookup_artifact("k" * 64) is None


def record(name: str, data: bytes) -> ArtifactRecord:
    return ArtifactRecord(
        name=name,
        recipe="demo",
        version="1",
        target="t",
        format="pex",
        python="3.11",
        sha256=sha(data),
        size=len(data),
        lock="lockfiles/demo/t.txt",
        lock_digest="sha256:0",
        inputs={},
    )


def test_publish_merges_and_drops_changed(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    out = tmp_path / "dist"
    (src / "a").write_bytes(b"A")
    (src / "b").write_bytes(b"B")
    publish(out, [(src / "a", record("demo-a.pex", b"A"))])
    publish(out, [(src / "b", record("demo-b.pex", b"B"))])
    listed = checksums.parse((out / "SHA256SUMS").read_text(), out / "SHA256SUMS")
    assert set(listed) == {"demo-a.pex", "demo-b.pex", "manifest.json"}
    (out / "demo-a.pex").write_bytes(b"changed by hand")
    publish(out, [(src / "b", record("demo-b.pex", b"B"))])
    listed = checksums.parse((out / "SHA256SUMS").read_text(), out / "SHA256SUMS")
    assert set(listed) == {"demo-b.pex", "manifest.json"}
    names = [a["name"] for a in json.loads((out / "manifest.json").read_text())["artifacts"]]
    assert names == ["demo-b.pex"]
    assert listing_problems(out) == []


def test_publish_drops_a_listed_document_the_manifest_does_not_call_for(
    tmp_path: Path,
) -> None:
    """A profile for a target without an artifact, listed with a matching checksum, is
    not carried into the new SHA256SUMS (so never signed), and verify fails it before."""
    src = tmp_path / "src"
    src.mkdir()
    out = tmp_path / "dist"
    (src / "a").write_bytes(b"A")
    publish(out, [(src / "a", record("demo-1-t.pex", b"A"))])
    planted = "demo-1-other.seccomp.json"
    (out / planted).write_text('{"defaultAction": "SCMP_ACT_ALLOW"}\n')
    sums = out / "SHA256SUMS"
    sums.write_text(sums.read_text() + f"{sha256_file(out / planted)}  {planted}\n")
    failed = {(i.kind, i.name) for i in verify(out).items if not i.ok}
    assert ("document", planted) in failed  # (the others: no sbom, reports: a bare publish)
    (src / "b").write_bytes(b"B")
    publish(out, [(src / "b", record("demo-1-t.pyz", b"B"))])
    listed = checksums.parse(sums.read_text(), sums)
    assert planted not in listed
    assert set(listed) == {"demo-1-t.pex", "demo-1-t.pyz", "manifest.json"}


def test_inspect_reads_zip_member(tmp_path: Path) -> None:
    art = tmp_path / "x.pyz"
    with zipfile.ZipFile(art, "w") as zf:
        zf.writestr("site-packages/__buildkit__.json", json.dumps({"recipe": "demo"}))
    assert buildinfo.read(art) == {"recipe": "demo"}
    plain = tmp_path / "plain.zip"
    with zipfile.ZipFile(plain, "w") as zf:
        zf.writestr("x", "y")
    with pytest.raises(InputError, match="no buildkit build info"):
        buildinfo.read(plain)
    atomic_write_text(tmp_path / "text", "not an artifact")
    with pytest.raises(InputError, match="no buildkit build info"):
        buildinfo.read(tmp_path / "text")
    # a native binary: the info file's bytes somewhere inside, found by its first line
    info = BuildInfo(
        recipe="demo",
        version="1",
        target="linux-amd64",
        format="nuitka",
        python="3.11",
        entry="demo:main",
        lock_digest="sha256:0",
        sources_digest="sha256:1",
        wheels=(),
        toolkit="0",
        tools=(("nuitka", "4"),),
        settings=(("mode", "onefile"),),
    )
    binary = tmp_path / "demo"
    binary.write_bytes(b"\x7fELF" + bytes(5000) + info.to_json().encode() + bytes(300))
    doc = buildinfo.read(binary)
    assert doc["format"] == "nuitka" and doc["settings"] == {"mode": "onefile"}
    assert doc["_schema"] == "buildkit-info/1"


@pytest.mark.parametrize("name", ["../outside", "sub/file", "..", ".", "a\\b"])
def test_sha256sums_names_stay_in_the_folder(tmp_path: Path, name: str) -> None:
    with pytest.raises(CheckFailed, match="not a file of this folder"):
        checksums.parse(f"{'0' * 64}  {name}\n", tmp_path / "SHA256SUMS")


def test_verify_flags_a_manifest_name_outside_the_folder(tmp_path: Path) -> None:
    (tmp_path / "outside").write_bytes(b"x")
    release = tmp_path / "dist"
    release.mkdir()
    entry = {**record("../outside", b"x").to_dict(), "name": "../outside"}
    doc = {"schema": manifest.SCHEMA, "artifacts": [entry, {"name": "bad"}, ["not", "one"]]}
    (release / "manifest.json").write_text(json.dumps(doc))
    checksums.write(release, {"manifest.json": sha256_file(release / "manifest.json")})
    result = verify(release)
    assert not result.ok
    assert any(
        i.kind == "manifest" and i.name == "../outside" and "not a file of this folder" in i.detail
        for i in result.failures
    )
    assert any(
        i.kind == "manifest" and i.name == "bad" and "lacks" in i.detail for i in result.failures
    )
    assert any(
        i.kind == "manifest" and i.name == "entry 3" and "not an object but list" in i.detail
        for i in result.failures
    )


def test_manifest_entries_round_trip_and_foreign_ones_are_refused() -> None:
    entry = record("demo-1-t.pex", b"A").to_dict()
    assert "unvouched" not in entry  # only a --keep-foreign entry carries it
    assert ArtifactRecord.from_dict(entry, "in/manifest.json").to_dict() == entry
    kept = {**entry, "unvouched": "kept by --keep-foreign: another recipe"}
    assert ArtifactRecord.from_dict(kept, "in/manifest.json").to_dict() == kept
    native = {"path": "a.so", "sha256": "0" * 64, "component": "wheel", "origin": "a 1",
              "source": "a-1-py3-none-any.whl"}  # fmt: skip
    listed = {**entry, "natives": [native]}
    assert ArtifactRecord.from_dict(listed, "in/manifest.json").to_dict() == listed
    proved = {**entry, "parity": {"modules": 412, "data": 9, "skipped": 3}}
    assert ArtifactRecord.from_dict(proved, "in/manifest.json").to_dict() == proved
    for bad, why in (
        ({**entry, "script": "curl | sh"}, "unknown key.*script"),
        ({k: v for k, v in entry.items() if k != "sha256"}, "sha256"),
        ({**entry, "size": "12"}, "wrong type"),
        ({**entry, "name": ["a"]}, "wrong type"),
        # the native files: rows of exactly these string fields
        ({**entry, "natives": [{"path": "a.so"}]}, "natives of the wrong type"),
        ({**entry, "natives": [{**native, "sha256": 1}]}, "natives of the wrong type"),
        ({**entry, "natives": [{**native, "run": "sh"}]}, "natives of the wrong type"),
        ({**entry, "natives": "a.so"}, "natives of the wrong type"),
        # the parity proof's counts: exactly these, whole numbers
        ({**entry, "parity": {"modules": 1}}, "parity of the wrong type"),
        ({**entry, "parity": {"modules": -1, "data": 0, "skipped": 0}}, "parity of the wrong"),
        ({**entry, "parity": {"modules": True, "data": 0, "skipped": 0}}, "parity of the wrong"),
        ({**entry, "parity": "proved"}, "parity of the wrong type"),
    ):
        with pytest.raises(CheckFailed, match=f"in/manifest.json: manifest entry .*{why}"):
            ArtifactRecord.from_dict(bad, "in/manifest.json")


def test_publish_refuses_an_artifact_that_changed_before_it_was_published(
    tmp_path: Path,
) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    (src / "a").write_bytes(b"tampered")
    with pytest.raises(CheckFailed, match="changed before it was published"):
        publish(out, [(src / "a", record("demo-a.pex", b"A"))])
    assert not [p for p in out.iterdir()]  # nothing published, no staging left


def test_put_writes_whole_files_and_names_them(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    written = put(out, {"x.hardening.json": "{}\n", "x.hardening.md": "# x\n"})
    assert written == [out / "x.hardening.json", out / "x.hardening.md"]
    assert sorted(p.name for p in out.iterdir()) == ["x.hardening.json", "x.hardening.md"]
