"""The hermetic toolchain for real: built (or reused) by the real command, its interpreter
checked with Debian's checksec and objdump, its ELF note read by the audit."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from buildkit.toolchain.build import note_header, zig
from tests.integration.conftest import buildkit

pytestmark = [pytest.mark.integration, pytest.mark.nuitka]


@pytest.fixture(scope="module")
def toolchain() -> Path:
    """The linux-amd64 toolchain, built once per lock on this machine (tests/conftest.py
    shares it between runs, ci/emulated-hosts starts it early)."""
    buildkit("toolchain", "build", "--target", "linux-amd64")
    status = buildkit("toolchain", "status", "--target", "linux-amd64", "--json")
    (state,) = json.loads(status.stdout)
    assert state["ok"] is True, state
    return Path(state["folder"])


def _checksec(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        ["checksec", f"--file={path}", "--output=json"], capture_output=True, text=True, check=True
    ).stdout
    (report,) = json.loads(out).values()
    return dict(report)


def test_status_names_every_source_and_the_compiler(toolchain: Path) -> None:
    record = json.loads((toolchain / "toolchain.json").read_text())
    assert record["zig"]["target"] == "x86_64-linux-gnu.2.17"
    names = {c["name"] for c in record["components"]}
    assert {"cpython-3.11", "zlib", "bzip2", "xz", "libffi", "openssl", "ncurses"} == names
    assert all(re.fullmatch(r"[0-9a-f]{64}", c["sha256"]) for c in record["components"])
    python = toolchain / "python" / "bin" / "python3.11"
    proc = subprocess.run(
        [str(python), "-I", "-c", "import ssl, sys; print(ssl.OPENSSL_VERSION, sys.version)"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert proc.stdout.startswith("OpenSSL 3.5.7") and "3.11.2" in proc.stdout


def test_every_interpreter_file_is_hardened_and_needs_at_most_glibc_2_17(
    toolchain: Path,
) -> None:
    """checksec and buildkit's audit agree on each stdlib extension module: full RELRO and
    a canary everywhere (a host's interpreter, pyenv's here, has partial RELRO and none);
    objdump finds no GLIBC_ version above 2.17."""
    modules = sorted((toolchain / "python" / "lib" / "python3.11" / "lib-dynload").glob("*.so"))
    assert len(modules) > 50
    audit = json.loads(buildkit("audit", *modules, "--json").stdout)
    ours = {f["path"]: f["checks"] for f in audit["files"]}
    for module in modules:
        report = _checksec(module)
        checks = ours[str(module)]
        assert report["relro"] == "full" and checks["relro"]["state"] == "pass", module
        assert report["canary"] == "yes" and checks["canary"]["state"] == "pass", module
        assert checks["fortify"]["state"] in ("pass", "unknown"), (module, checks["fortify"])
        assert checks["glibc"]["state"] in ("pass", "n/a"), (module, checks["glibc"])
        dump = subprocess.run(["objdump", "-T", str(module)], capture_output=True, text=True,
                              check=True).stdout  # fmt: skip
        versions = [tuple(map(int, v.split("."))) for v in re.findall(r"GLIBC_([\d.]+\d)", dump)]
        assert max(versions, default=(0,)) <= (2, 17), (module, max(versions))


def test_the_toolchain_note_is_what_makes_fortify_pass_without_checks(tmp_path: Path) -> None:
    """A library whose calls had no size known at compile time has no __*_chk import,
    compiled with _FORTIFY_SOURCE or not: the toolchain's note tells them apart. Without
    the note it fails (as checksec says); with it, it passes saying why; a program
    carrying the note is still judged by its imports."""
    src = tmp_path / "copy.c"
    src.write_text("#include <string.h>\nvoid f(char *a, const char *b, unsigned n)"
                   " { memcpy(a, b, n); }\n")  # fmt: skip
    note = tmp_path / "note.h"
    note.write_text(note_header(["-fstack-protector-all", "-D_FORTIFY_SOURCE=2"]))
    env = {**os.environ, "ZIG_GLOBAL_CACHE_DIR": str(tmp_path / "zig"),
           "ZIG_LOCAL_CACHE_DIR": str(tmp_path / "zig")}  # fmt: skip
    cc = [str(zig()), "cc", "-target", "x86_64-linux-gnu.2.17", "-O2", "-fPIC"]
    plain, noted = tmp_path / "plain.so", tmp_path / "noted.so"
    for out, extra in ((plain, []), (noted, ["-include", str(note)])):
        obj = out.with_suffix(".o")  # compiled, then linked as CPython links its modules
        subprocess.run([*cc, *extra, "-c", str(src), "-o", str(obj)], check=True, env=env)
        # -O2 at the link too: zig then collects unreferenced sections; the note stays
        link = [str(zig()), "cc", "-target", "x86_64-linux-gnu.2.17", "-O2", "-shared"]
        subprocess.run([*link, str(obj), "-o", str(out)], check=True, env=env)
    doc = json.loads(buildkit("audit", plain, noted, "--json").stdout)
    fortify = {Path(f["path"]).name: f["checks"]["fortify"] for f in doc["files"]}
    assert fortify["plain.so"]["state"] == "fail", fortify
    assert fortify["noted.so"]["state"] == "pass", fortify
    assert "-D_FORTIFY_SOURCE=2 (its buildkit toolchain note)" in fortify["noted.so"]["evidence"]
