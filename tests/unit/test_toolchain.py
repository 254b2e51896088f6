"""The toolchain lock: its reader's refusals, and archives checked before any build."""

from __future__ import annotations

import http.server
import threading
import tomllib
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest

from buildkit import targets, toolchain
from buildkit.cache import Cache
from buildkit.errors import InputError, IntegrityError
from buildkit.toolchain import store

AMD64 = targets.get("linux-amd64")


def _lock() -> dict[str, Any]:
    text = files("buildkit").joinpath(toolchain.LOCK).read_text(encoding="utf-8")
    return tomllib.loads(text)


def test_the_shipped_lock_reads() -> None:
    spec = toolchain.spec_for(AMD64)
    assert spec.zig_target == "x86_64-linux-gnu.2.17" == AMD64.zig_target
    assert spec.python == AMD64.python
    assert [p.source.name for p in spec.libraries] == list(toolchain.LIBRARIES)
    assert spec.cpython.version.startswith(spec.python + ".")


def test_digest_follows_sources_and_compiler() -> None:
    spec = toolchain.spec_for(AMD64)
    doc = _lock()
    doc["sources"]["zlib"]["sha256"] = "0" * 64
    other = toolchain.parse(doc, AMD64)
    assert spec.digest("0.17.1") != other.digest("0.17.1")
    assert spec.digest("0.17.1") != spec.digest("0.18.0")
    assert spec.digest("0.17.1") == toolchain.spec_for(AMD64).digest("0.17.1")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["sources"]["zlib"].pop("sha256"), r"\[sources.zlib\].sha256 is missing"),
        (
            lambda d: d["sources"]["openssl"].update(sha256="ABC"),
            r"\[sources.openssl\].sha256 is not 64 lower-case hex",
        ),
        (
            lambda d: d["sources"]["xz"].update(url="file:///etc/passwd"),
            r"\[sources.xz\].url is not an http",
        ),
        (
            lambda d: d["targets"]["linux-amd64"].update(libraries=["zlib", "opensll"]),
            r"unknown library 'opensll'; did you mean 'openssl'",
        ),
        (
            lambda d: d["targets"]["linux-amd64"].update(python="3.99"),
            r"\[targets.linux-amd64\].python must name",
        ),
        (lambda d: d["targets"].pop("linux-amd64"), r"no toolchain for target linux-amd64"),
        (
            lambda d: d["targets"]["linux-amd64"].update(programs=["binutils", "patchelff"]),
            r"unknown program 'patchelff'; did you mean 'patchelf'",
        ),
        (
            lambda d: d["targets"]["linux-amd64"].update(programs="binutils"),
            r"\[targets.linux-amd64\].programs is not a list",
        ),
        (
            lambda d: (
                d["targets"]["linux-amd64"].update(programs=["patchelf"]),
                d["sources"].pop("patchelf"),
            ),
            r"program patchelf has no \[sources.patchelf\] table",
        ),
        (
            lambda d: d["sources"]["binutils"].update(sha256="1" * 63),
            r"\[sources.binutils\].sha256 is not 64",
        ),
    ],
)
def test_bad_lock_refused_naming_the_key(change: Any, message: str) -> None:
    doc = _lock()
    change(doc)
    with pytest.raises(InputError, match=message):
        toolchain.parse(doc, targets.get("linux-arm64") if "binutils" in message else AMD64)


def test_arm64_toolchains_bring_their_builders_programs() -> None:
    """The aarch64 toolchains are built here and used in emulated roots: they carry
    readelf, strip and patchelf built for this machine, never listed as in the binary.
    The key does not depend on the machine: the builder inside its aarch64 root must
    find the toolchain this machine made."""
    for name, zig_target, python in (
        ("linux-arm64", "aarch64-linux-gnu.2.17", "3.11"),
        ("alpine-arm64", "aarch64-linux-musl", "3.12"),
    ):
        spec = toolchain.spec_for(targets.get(name))
        assert spec.zig_target == zig_target and spec.python == python
        assert [p.source.name for p in spec.programs] == ["binutils", "patchelf"]
        assert not {p.source.name for p in spec.pinned} & {"binutils", "patchelf"}
        assert spec.sources == (*spec.pinned, *spec.programs)
    assert toolchain.spec_for(AMD64).programs == ()
    arm = targets.get("linux-arm64")
    here = toolchain.spec_for(arm).digest("0.17.1")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(targets, "host_triple", lambda: ("linux", "aarch64", "glibc"))
        assert toolchain.parse(_lock(), arm).digest("0.17.1") == here


def test_musl_toolchains_link_dynamically() -> None:
    """zig links musl statically unless told; a static program cannot load extension
    modules (a musllinux wheel's), so every musl compile and link says -dynamic."""
    from buildkit.toolchain.build import dynamic_flag

    assert dynamic_flag("aarch64-linux-musl") == " -dynamic"
    assert dynamic_flag("aarch64-linux-gnu.2.17") == ""


def test_target_without_toolchain_refused() -> None:
    with pytest.raises(InputError, match="no toolchain for target darwin-arm64"):
        toolchain.spec_for(targets.get("darwin-arm64"))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """A local HTTP server for the folder ``tmp_path / "www"`` (a thread, no process)."""
    www = tmp_path / "www"
    www.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(www), **kwargs)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def test_archive_with_a_flipped_byte_refused_before_any_build(
    tmp_path: Path, served: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib
    import io
    import tarfile

    # A real (small) tarball pinned by its digest, then served with one byte flipped.
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        body = b"int main(void) { return 0; }\n" * 100
        info = tarfile.TarInfo("zlib-1.3.1/zlib.c")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    good = buf.getvalue()
    flipped = bytearray(good)
    flipped[len(flipped) // 2] ^= 0x01
    (tmp_path / "www" / "zlib-1.3.1.tar.gz").write_bytes(bytes(flipped))
    doc = _lock()
    doc["sources"]["zlib"].update(
        url=f"{served}/zlib-1.3.1.tar.gz", sha256=hashlib.sha256(good).hexdigest()
    )
    doc["targets"]["linux-amd64"]["libraries"] = ["zlib"]
    (tmp_path / "www" / "cpython.tar.gz").write_bytes(good)  # a good archive, fetched first
    doc["sources"]["cpython-3.11"].update(
        url=f"{served}/cpython.tar.gz", sha256=hashlib.sha256(good).hexdigest()
    )
    spec = toolchain.parse(doc, AMD64)
    cache = Cache(root=tmp_path / "cache")
    monkeypatch.setattr("buildkit.zigcc.need_program", lambda *a: "")
    with pytest.raises(IntegrityError, match=r"zlib-1.3.1.tar.gz: sha256 [0-9a-f]{64}, pinned"):
        store.ensure(AMD64, cache, spec=spec)
    assert not (cache.root / "toolchain").exists() or not any(
        p.is_dir() for p in (cache.root / "toolchain").iterdir()
    )
    assert [p.name for p in (cache.root / "downloads").rglob("*.tar.gz")] == ["cpython.tar.gz"]
    flipped_left = [p for p in (cache.root / "tmp").rglob("zlib-1.3.1.tar.gz")]
    assert not flipped_left, "the flipped download was not removed"


def test_a_kept_venv_whose_interpreter_is_gone_is_made_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A venv made through a link to the interpreter (repro's per-build cache folders
    lead to the shared toolchain) must name its real path; one whose interpreter has gone
    anyway is removed and made again, not reported as "cannot keep"."""
    from buildkit.toolchain import venv

    real = tmp_path / "real" / "bin" / "python3.11"
    real.parent.mkdir(parents=True)
    real.write_text("")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    made: list[Path] = []

    def fake_venv(python: Path, dest: Path, *, what: str) -> None:
        made.append(python)
        (dest / "bin").mkdir(parents=True)
        (dest / "bin" / "python").symlink_to(python)

    monkeypatch.setattr(venv, "toolkit_venv", fake_venv)
    parent = tmp_path / "venvs"
    cache = Cache(root=tmp_path / "cache")
    first = venv.kept_toolkit_venv(
        tmp_path / "link" / "bin" / "python3.11", parent, "k", what="v", cache=cache
    )
    assert made == [real] and first.resolve() == real
    assert venv.kept_toolkit_venv(real, parent, "k", what="v", cache=cache) == first
    assert len(made) == 1
    real.unlink()  # the interpreter it was made from is gone
    real.with_name("python3.12").write_text("")
    again = venv.kept_toolkit_venv(real.with_name("python3.12"), parent, "k", what="v", cache=cache)
    assert again == first and again.resolve() == real.with_name("python3.12")
    digest = first.parent.parent.name
    assert sorted(p.name for p in parent.iterdir()) == [digest, f"{digest}.sealed"]  # no leftover


def test_a_kept_venv_that_changed_or_lacks_its_seal_is_made_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 38 item 4: a kept venv runs code into every build (Nuitka, pex, shiv): one
    whose files changed since it was sealed, or one that carries no seal of this key (a
    restored cache), is removed and made again."""
    from buildkit.toolchain import venv

    python = tmp_path / "python3.11"
    python.write_text("")
    made: list[Path] = []

    def fake_venv(python: Path, dest: Path, *, what: str) -> None:
        made.append(dest)
        (dest / "bin").mkdir(parents=True)
        (dest / "bin" / "python").symlink_to(python)
        (dest / "lib").mkdir()
        (dest / "lib" / "nuitka.py").write_text("genuine = True\n")

    monkeypatch.setattr(venv, "toolkit_venv", fake_venv)
    cache, parent = Cache(root=tmp_path / "cache"), tmp_path / "venvs"
    first = venv.kept_toolkit_venv(python, parent, "k", what="v", cache=cache)
    folder = first.parent.parent
    assert venv.kept_toolkit_venv(python, parent, "k", what="v", cache=cache) == first
    assert len(made) == 1
    (folder / "lib" / "nuitka.py").write_text("genuine = True\nimport evil\n")
    from buildkit import cache as cache_module

    cache_module._VERIFIED.clear()  # a new process
    venv.kept_toolkit_venv(python, parent, "k", what="v", cache=cache)
    assert len(made) == 2 and "evil" not in (folder / "lib" / "nuitka.py").read_text()
    (folder.with_name(folder.name + ".sealed")).unlink()  # a venv restored without its seal
    cache_module._VERIFIED.clear()
    venv.kept_toolkit_venv(python, parent, "k", what="v", cache=cache)
    assert len(made) == 3


def test_a_toolchain_whose_files_changed_or_lack_a_seal_is_not_used(tmp_path: Path) -> None:
    """Issue 38 item 4: the toolchain's check read its record and saw that files existed,
    never their bytes. Its interpreter goes into every binary: it must be what a build
    holding this cache's key sealed."""
    import json

    from buildkit import cache as cache_module
    from buildkit.zigcc import zig_version

    spec = toolchain.parse(_lock(), AMD64)
    cache = Cache(root=tmp_path / "cache")
    folder = tmp_path / "tc"
    python = folder / "python" / "bin" / f"python{spec.python}"
    python.parent.mkdir(parents=True)
    python.write_bytes(b"\x7fELF genuine")
    record = {"digest": spec.digest(zig_version())}
    (folder / store.RECORD).write_text(json.dumps(record))
    for part in store._sealed_parts(spec):
        (folder / part).mkdir(exist_ok=True)
        cache.seal_tree(folder / part, store._kind(spec, part))
    assert store.check(spec, folder, cache) is None
    python.write_bytes(b"\x7fELF with a line added")
    cache_module._VERIFIED.clear()  # the next build
    assert "its files changed since it was made and sealed" in str(store.check(spec, folder, cache))
    (folder / "python.sealed").unlink()
    assert "has no seal" in str(store.check(spec, folder, cache))
