"""Finding native files in archives and onefile payloads, and hostile archives: no crash,
nothing written, a finding for each (no external tool is run)."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tarfile
import zipfile
from pathlib import Path

import pytest

from buildkit.audit.findings import Component
from buildkit.audit.run import audit_paths
from buildkit.audit.walk import NotAudited, native_format
from buildkit.errors import InputError

ELF_BYTES = Path("/usr/bin/ls").read_bytes()


def components(result):  # type: ignore[no-untyped-def]
    return {f.path.split("!", 1)[-1]: (f.component, f.origin) for f in result.files}


def test_wheel_members_named_by_dist_info_and_pex_layout(tmp_path: Path) -> None:
    art = tmp_path / "demo.pyz"
    with zipfile.ZipFile(art, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("site-packages/fast/_speed.so", ELF_BYTES)
        zf.writestr("site-packages/fast-2.0.dist-info/RECORD", "fast/_speed.so,sha256=x,1\n")
        zf.writestr(".deps/other_pkg-1.5-cp311-cp311-manylinux_2_17_x86_64.whl/o/_o.so", ELF_BYTES)
        zf.writestr("site-packages/_ssl.so", ELF_BYTES)
        zf.writestr("site-packages/notes.txt", "plain text")
    found = components(audit_paths([art]))
    assert found == {
        "site-packages/fast/_speed.so": (Component.WHEEL, "fast 2.0"),
        ".deps/other_pkg-1.5-cp311-cp311-manylinux_2_17_x86_64.whl/o/_o.so": (
            Component.WHEEL,
            "other_pkg 1.5",
        ),
        "site-packages/_ssl.so": (Component.INTERPRETER, "CPython"),
    }


def test_zip_bomb_and_slip_names_are_findings_and_nothing_is_written(tmp_path: Path) -> None:
    art = tmp_path / "hostile.pex"
    with zipfile.ZipFile(art, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bomb.so", b"\x7fELF" + bytes(8 << 20))  # 8 MiB of zeros: ~8 KiB packed
        zf.writestr("../../../../tmp/escape.so", ELF_BYTES[:3000])
        zf.writestr("ctl\x1b[31m.so", ELF_BYTES)
    before = sorted(os.listdir(tmp_path)), sorted(os.listdir("/tmp"))
    result = audit_paths([art])
    assert [p.path for p in result.problems] == [f"{art}!bomb.so"]
    assert "zip bomb" in result.problems[0].reason
    shown = {f.path.split("!", 1)[1]: f for f in result.files}
    assert shown["../../../../tmp/escape.so"].check("parse") is not None  # truncated: a finding
    assert "ctl\\x1b[31m.so" in shown  # control characters escaped
    assert (sorted(os.listdir(tmp_path)), sorted(os.listdir("/tmp"))) == before


def test_unreadable_archives_are_problems(tmp_path: Path) -> None:
    good = tmp_path / "good.pyz"
    with zipfile.ZipFile(good, "w") as zf:
        zf.writestr("a.so", ELF_BYTES)
    cut = tmp_path / "cut.pyz"
    cut.write_bytes(good.read_bytes()[:-30])  # the central directory's end is gone
    tgz = tmp_path / "broken.tar.gz"
    tgz.write_bytes(b"\x1f\x8b\x08\x00" + bytes(100))
    missing = tmp_path / "missing.pex"
    result = audit_paths([cut, tgz, missing])
    reasons = {Path(p.path).name: p.reason for p in result.problems}
    assert set(reasons) == {"cut.pyz", "broken.tar.gz", "missing.pex"}
    assert "not a readable zip" in reasons["cut.pyz"]
    assert "unreadable tar" in reasons["broken.tar.gz"]
    assert reasons["missing.pex"] == "no such file or folder"


def test_folders_do_not_follow_symlinks(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "tool").write_bytes(ELF_BYTES)
    (tree / "out").symlink_to("/usr/bin")
    (tree / "lib.so").symlink_to("/usr/bin/ls")
    result = audit_paths([tree])
    assert [f.path for f in result.files] == [str(tree / "tool")]
    notes = {Path(n.path).name: n.reason for n in result.not_audited}
    assert set(notes) == {"out", "lib.so"}
    assert all("outside the tree), not followed" in r for r in notes.values())
    assert all(isinstance(n, NotAudited) for n in result.not_audited)


def _payload(files: dict[str, bytes]) -> bytes:
    body = b"KAX"
    for name, data in files.items():
        body += name.encode() + b"\0" + bytes([1]) + struct.pack("<QI", len(data), 1) + data
    body += b"\0"
    return body + struct.pack("<Q", len(body))


def test_onefile_payload_members_and_components(tmp_path: Path) -> None:
    info = json.dumps(
        {
            "recipe": "demo",
            "python": "3.12",
            "wheels": ["psutil-7.0.0-cp36-abi3-manylinux_2_17_x86_64.whl sha256:00"],
        }
    ).encode()
    binary = tmp_path / "demo-1.0.0-linux-amd64"
    binary.write_bytes(
        ELF_BYTES
        + bytes(16)
        + _payload(
            {
                "demo.bin": ELF_BYTES,
                "__buildkit__.json": info,
                "libpython3.12.so.1.0": ELF_BYTES,
                "_ssl.so": ELF_BYTES,
                "libssl.so.3": ELF_BYTES,
                "psutil/_psutil_linux.so": ELF_BYTES,
                "strange.so": ELF_BYTES,
            }
        )
    )
    found = components(audit_paths([binary]))
    assert found == {
        str(binary): (Component.OWN, "demo"),
        "demo.bin": (Component.OWN, "demo"),
        "libpython3.12.so.1.0": (Component.INTERPRETER, "CPython 3.12"),
        "_ssl.so": (Component.INTERPRETER, "CPython 3.12"),
        "libssl.so.3": (Component.SYSTEM, "copied from the build host"),
        "psutil/_psutil_linux.so": (Component.WHEEL, "psutil 7.0.0"),
        "strange.so": (Component.UNKNOWN, ""),
    }


def test_plain_files_and_tar_members(tmp_path: Path) -> None:
    tgz = tmp_path / "demo-1.0.0-linux-amd64.tar.gz"
    with tarfile.open(tgz, "w:gz") as tar:
        for name, data, mode in (
            ("demo.dist/demo", ELF_BYTES, 0o755),
            ("demo.dist/libz.so.1", ELF_BYTES, 0o644),
            ("demo.dist/__buildkit__.json", b'{"recipe": "demo"}', 0o644),
        ):
            entry = tarfile.TarInfo(name)
            entry.size, entry.mode = len(data), mode
            tar.addfile(entry, __import__("io").BytesIO(data))
    found = components(audit_paths([tgz, Path("/usr/bin/ls")]))
    assert found == {
        "demo.dist/demo": (Component.OWN, "demo"),
        "demo.dist/libz.so.1": (Component.SYSTEM, "copied from the build host"),
        "/usr/bin/ls": (Component.SYSTEM, "host system"),
    }


def test_native_magic() -> None:
    assert native_format(b"\x7fELF\x02\x01\x01\x00") == "elf"
    assert native_format(b"\xcf\xfa\xed\xfe\x0c\x00\x00\x01") == "mach-o"
    assert native_format(b"\xca\xfe\xba\xbe\x00\x00\x00\x02") == "mach-o"  # universal, 2 slices
    assert native_format(b"\xca\xfe\xba\xbe\x00\x00\x00\x41") is None  # a Java class file
    assert native_format(b"PK\x03\x04") is None


def test_huge_files_are_reported_not_read(tmp_path: Path) -> None:
    huge = tmp_path / "huge.so"
    with huge.open("wb") as f:
        f.write(ELF_BYTES[:64])
        f.truncate(600 << 20)  # sparse: no disk used
    result = audit_paths([huge])
    assert result.files == ()
    assert [p.reason for p in result.problems] == [f"{600 << 20} bytes: over the {512 << 20} limit"]


def test_stdlib_modules_are_those_of_the_artifacts_python() -> None:
    """Which top-level modules of a Nuitka payload are the interpreter's depends on the
    artifact's Python, not on the one running the audit: 3.11 has _sha512, 3.12 _sha2."""
    from buildkit.audit.components import Context, classify
    from buildkit.audit.findings import Component

    toolchain = "CPython 3.11.2 (buildkit toolchain) abc"
    for python, stdlib, other in (("3.11", "_sha512.so", "_sha2.so"),
                                  ("3.12", "_sha2.so", "_sha512.so")):  # fmt: skip
        ctx = Context(kind="onefile", recipe="r", python=python, toolchain=toolchain)
        assert classify(stdlib, "a", ctx) == (Component.TOOLCHAIN, toolchain, ""), python
        assert classify(other, "a", ctx)[0] is Component.UNKNOWN, python
    plain = Context(kind="onefile", recipe="r", python="3.11")
    assert classify("_ssl.so", "a", plain) == (Component.INTERPRETER, "CPython 3.11", "")


def _compressed_payload(files: dict[str, bytes], *, tail: bytes = b"") -> bytes:
    """As Nuitka writes ``compress = "zstd"``: the same list as one zstandard frame."""
    import zstandard

    body = b""
    for name, data in files.items():
        body += name.encode() + b"\0" + bytes([1]) + struct.pack("<QI", len(data), 1) + data
    frame = zstandard.ZstdCompressor(level=3).compress(body + b"\0" + tail)
    return b"KAY" + frame + struct.pack("<Q", 3 + len(frame))


def test_a_compressed_payload_is_inflated_and_its_members_audited(tmp_path: Path) -> None:
    from buildkit import buildinfo

    info = json.dumps({"recipe": "demo", "python": "3.12", "schema": 1}).encode()
    binary = tmp_path / "demo-1.0.0-linux-amd64"
    binary.write_bytes(
        ELF_BYTES
        + bytes(16)
        + _compressed_payload(
            {"demo.bin": ELF_BYTES, "__buildkit__.json": info, "libpython3.12.so.1.0": ELF_BYTES}
        )
    )
    result = audit_paths([binary])
    found = components(result)
    assert found == {
        str(binary): (Component.OWN, "demo"),
        "demo.bin": (Component.OWN, "demo"),
        "libpython3.12.so.1.0": (Component.INTERPRETER, "CPython 3.12"),
    }
    member = next(f for f in result.files if f.path.endswith("!demo.bin"))
    assert member.sha256 == hashlib.sha256(ELF_BYTES).hexdigest()  # the inflated bytes
    assert buildinfo.read(binary)["recipe"] == "demo"  # inspect reads it too


def test_a_compressed_payload_bomb_is_refused_not_inflated(tmp_path: Path) -> None:
    """A small frame inflating past 200x its size: reported as unreadable, memory bounded."""
    from buildkit import buildinfo, onefile

    bomb = _compressed_payload({"demo.bin": bytes(64 << 20)})
    assert len(bomb) < 64 << 10
    binary = tmp_path / "bomb"
    binary.write_bytes(ELF_BYTES + bomb)
    why = onefile.read_payload(binary.read_bytes())
    assert isinstance(why, str) and "refused as a bomb" in why, why
    result = audit_paths([binary])
    assert [f.path for f in result.files] == [str(binary)]  # the bootstrap, nothing inside
    with pytest.raises(InputError, match="refused as a bomb"):
        buildinfo.read(binary)


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (b"KAY\x28\xb5\x2f\xfd" + b"\xff" * 40, "does not inflate"),
        (_compressed_payload({"a": b"x"})[:-20], "ends before its zstandard frame"),
        (_compressed_payload({"a": b"x"})[:-8] + struct.pack("<Q", 7), "length does not follow"),
        (_compressed_payload({"a": b"x"}, tail=b"junk"), "file list cannot be read"),
    ],
)
def test_a_broken_compressed_payload_is_explained(payload: bytes, why: str) -> None:
    from buildkit import onefile

    found = onefile.read_payload(ELF_BYTES + payload)
    assert isinstance(found, str) and why in found, found
