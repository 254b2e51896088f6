"""Emulated host specs, the pinned toolkit lock the builder installs, Debian package reading."""

from __future__ import annotations

import io
import re
import shutil
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest

from buildkit import hosts, targets
from buildkit.errors import InputError, ToolError
from buildkit.hosts.builder import _BACKENDS, _lock_text
from buildkit.hosts.musl import deb_files, deb_member
from buildkit.toolchain.venv import requirement_blocks as _blocks
from tests.conftest import ROOT


def test_every_host_stands_for_a_target_and_pins_its_sources() -> None:
    for spec in hosts.all_hosts().values():
        target = targets.get(spec.target)
        if spec.oldest_glibc:  # a root of this machine's architecture, for native binaries
            assert spec.qemu == "" and not spec.python and not spec.builder
            assert target.glibc_baseline and spec.kind == "debian"
            continue
        assert target.arch == "aarch64" and spec.qemu == "aarch64"
        assert spec.python_version == target.python
        assert spec.kind in ("debian", "musl-cpython")
        for source in spec.sources:
            assert re.fullmatch(r"[0-9a-f]{64}", source.sha256), source
            assert source.url.startswith("http") and source.what
    assert hosts.get("linux-arm64").builder and hosts.get("linux-arm64").packages
    assert {s.name for s in hosts.get("alpine-arm64").sources} == {
        "cpython", "zlib", "libffi", "openssl", "ncurses", "terminfo", "musl", "busybox"
    }  # fmt: skip


def test_unknown_host_suggests_one() -> None:
    with pytest.raises(InputError, match="linux-arm64"):
        hosts.get("linux-arm46")


def test_a_changed_spec_means_a_new_root() -> None:
    spec = hosts.get("linux-arm64")
    assert spec.digest() == hosts.get("linux-arm64").digest()
    assert replace(spec, packages=(*spec.packages, "curl")).digest() != spec.digest()
    assert replace(spec, suite="trixie").digest() != spec.digest()


def test_builder_lock_is_the_toolkit_lock_without_the_test_tools() -> None:
    """buildkit/data/toolkit-runtime.txt pins exactly the versions lockfiles/ pins (both
    written by ci/lock-toolkit), every one with hashes, and the build backends first."""
    runtime = {b.split("==")[0].lower(): b for b in _blocks(_lock_text())}
    full_text = (ROOT / "lockfiles" / "toolkit.txt").read_text() + (
        ROOT / "lockfiles" / "toolkit-build.txt"
    ).read_text()
    full = {b.split("==")[0].lower(): b.split()[0] for b in _blocks(full_text)}
    for name, block in runtime.items():
        assert "--hash=sha256:" in block, name
        assert block.split()[0] == full[name], name
    assert set(_BACKENDS) <= set(runtime)
    assert {"nuitka", "lief", "pex", "shiv", "uv"} <= set(runtime)
    assert not {"pytest", "mypy", "ruff", "hypothesis"} & set(runtime)


def _deb(files: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:xz") as tar:
        for name, body in files.items():
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(f"./{name}")
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    out = b"!<arch>\n"
    for name, body in (("debian-binary", b"2.0\n"), ("data.tar.xz", data.getvalue())):
        out += f"{name:<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(body):<10}`\n".encode()
        out += body + (b"\n" if len(body) % 2 else b"")
    return out


def test_deb_member_reads_one_file(tmp_path: Path) -> None:
    deb = tmp_path / "x.deb"
    deb.write_bytes(_deb({"usr/lib/libc.so": b"\x7fELF musl", "usr/bin/other": b"x"}))
    assert deb_member(deb, "usr/lib/libc.so") == b"\x7fELF musl"
    with pytest.raises(ToolError, match="has no file usr/bin/missing"):
        deb_member(deb, "usr/bin/missing")
    (tmp_path / "not.deb").write_bytes(b"PK\x03\x04")
    with pytest.raises(ToolError, match="not a Debian package"):
        deb_member(tmp_path / "not.deb", "usr/lib/libc.so")


def test_deb_files_takes_only_regular_files_inside_the_folder(tmp_path: Path) -> None:
    """The terminal descriptions copied into the musl root: a link (to anywhere) or a name
    that climbs out of the folder is not written into the root."""
    deb = tmp_path / "ncurses-base.deb"
    deb.write_bytes(
        _deb(
            {"usr/share/terminfo/x/xterm": b"xterm", "usr/share/terminfo/../../../etc/shadow": b"x",
             "usr/share/doc/README": b"doc"},
            links={"usr/share/terminfo/v/vt100": "/etc/passwd"},
        )
    )  # fmt: skip
    assert deb_files(deb, "usr/share/terminfo") == {"usr/share/terminfo/x/xterm": b"xterm"}
    assert deb_files(deb, "/usr/share/terminfo/") == {"usr/share/terminfo/x/xterm": b"xterm"}


def test_builder_refusals_come_before_any_work(capsys: pytest.CaptureFixture[str]) -> None:
    from buildkit.cli import main

    recipe = str(ROOT / "recipes" / "portcheck")
    assert main(["build", recipe, "--builder", "linux-amd64-bullseye"]) == 2
    err = capsys.readouterr().err
    assert "linux-amd64-bullseye does not run builds" in err and "Linux x86_64" in err
    assert main(["build", recipe, "--builder", "alpine-arm64", "--target", "linux-arm64"]) == 2
    assert "builds alpine-arm64 only, not linux-arm64" in capsys.readouterr().err
    assert main(["build", recipe, "--builder", "linux-arm64", "--target", "linux-amd64"]) == 2
    assert "builds linux-arm64 only, not linux-amd64" in capsys.readouterr().err


def test_builder_refuses_a_recipe_without_its_lock_before_entering_the_host(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The lock folder is mounted read-only inside: a missing lock is named here, with
    the command that makes it (not an overlay error about a read-only file system)."""
    from buildkit.cli import main

    recipe = tmp_path / "portcheck"
    shutil.copytree(ROOT / "recipes" / "portcheck", recipe)
    assert main(["build", str(recipe), "--builder", "linux-arm64"]) == 1
    err = capsys.readouterr().err
    assert "linux-arm64.txt: missing: no lock for this target" in err, err
    assert f"run `buildkit lock {recipe}`" in err and "emulated host" not in err


def test_run_on_checks_its_arguments(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from buildkit.cli import main

    assert main(["run-on", "linux-arm64", str(tmp_path / "none")]) == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "app.tar.gz").write_bytes(b"")
    assert main(["run-on", "linux-arm64", str(tmp_path / "app.tar.gz")]) == 2
    assert "standalone folder archive" in capsys.readouterr().err
    (tmp_path / "script").write_text("#!/bin/sh\n")
    assert main(["run-on", "linux-arm64", str(tmp_path / "script")]) == 2
    assert "is not executable" in capsys.readouterr().err
    assert main(["run-on", "linux-arm64", str(tmp_path / "script"), "--env", "X"]) == 2
    assert "expected NAME=VALUE" in capsys.readouterr().err


def test_nuitka_refusal_names_the_emulated_builder() -> None:
    """Asking this machine for an arm64 binary without --builder says which builder
    makes it here (both arm64 targets have one); darwin-arm64 has none."""
    from buildkit import targets
    from buildkit.backends.nuitka import NuitkaBackend

    for name in ("linux-arm64", "alpine-arm64"):
        said = NuitkaBackend().refusal(targets.get(name), "3.12")
        assert said is not None and f"--builder {name}" in said, said
    said = NuitkaBackend().refusal(targets.get("darwin-arm64"), "3.11")
    assert said is not None and "--builder" not in said and "macOS arm64" in said


def test_a_builders_toolkit_venv_is_kept_though_its_python_is_not_on_this_machine(
    tmp_path: Path,
) -> None:
    """The toolkit venv's bin/python links to the root's interpreter (the musl root's
    /usr/bin/python3.12 does not exist here): the venv is still found and reused, not
    installed again (an install would start a process: this test may not)."""
    import hashlib
    import os

    from buildkit.cache import Cache
    from buildkit.hosts import get
    from buildkit.hosts.builder import SRC, _lock_text, toolkit_venv
    from buildkit.hosts.store import Host

    spec = get("alpine-arm64")
    host = Host(spec=spec, folder=tmp_path / "alpine-arm64", cache=Cache(root=tmp_path))
    digest = hashlib.sha256((spec.digest() + _lock_text()).encode()).hexdigest()[:20]
    venv = host.folder / "toolkit" / digest
    (venv / "bin").mkdir(parents=True)
    (venv / "lib" / "python3.12" / "site-packages").mkdir(parents=True)
    os.symlink("/nonexistent/usr/bin/python3.12", venv / "bin" / "python")
    pth = venv / "lib" / "python3.12" / "site-packages" / "buildkit-source.pth"
    pth.write_text(SRC + "\n")
    kind = f"host {spec.name} toolkit venv {digest}"
    host.cache.seal_tree(venv, kind)  # as the build that made it did
    assert toolkit_venv(host) == venv
    # one file added after it was sealed: not used (it would be installed again)
    (pth.parent / "evil.pth").write_text("import os\n")
    from buildkit import cache as cache_module

    cache_module._VERIFIED.clear()
    assert host.cache.tree_problem(venv, kind) == "its files changed since it was made and sealed"


def test_a_fetched_source_is_a_private_copy_checked_after_copying(tmp_path: Path) -> None:
    """Issue 38 item 4: a cached archive checked and then opened again by path could be
    swapped in between; the build gets a private copy whose bytes were checked there."""
    import hashlib

    from buildkit.cache import Cache
    from buildkit.hosts import Source
    from buildkit.hosts.sources import fetch

    upstream = tmp_path / "upstream" / "demo-1.0.tar.gz"
    upstream.parent.mkdir()
    upstream.write_bytes(b"pinned bytes")
    source = Source(
        name="demo",
        url=upstream.as_uri(),
        sha256=hashlib.sha256(b"pinned bytes").hexdigest(),
        what="a test archive",
    )
    cache = Cache(root=tmp_path / "cache")
    first = fetch(source, cache, into=tmp_path / "work1")
    assert first == tmp_path / "work1" / "demo-1.0.tar.gz" and first.read_bytes() == b"pinned bytes"
    cached = cache.download(source.sha256, "demo-1.0.tar.gz")
    assert cached.read_bytes() == b"pinned bytes"
    cached.write_bytes(b"swapped after the check")  # what a writer of the cache does
    assert first.read_bytes() == b"pinned bytes"
    again = fetch(source, cache, into=tmp_path / "work2")  # found bad: fetched again
    assert again.read_bytes() == b"pinned bytes" and cached.read_bytes() == b"pinned bytes"
    default = fetch(source, cache)  # without a folder: this process's own, never the cache's
    assert default != cached and default.is_relative_to(cache.root / "tmp")
    assert default.read_bytes() == b"pinned bytes"
