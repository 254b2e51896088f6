"""musl aarch64 roots: the alpine-arm64 stand-in.

No Alpine image or musl CPython can be downloaded on the machines this runs on, so the
root is built from pinned sources (``[alpine-arm64.sources]`` in hosts.toml):

1. a CPython for this machine, of the same version (a cross build needs one to run its
   build scripts);
2. the libraries the stdlib modules an ops CLI needs link with: zlib, libffi, OpenSSL
   (``ssl``, ``hashlib``) and ncurses (``curses``), static and position-independent,
   cross-compiled for aarch64-linux-musl with ``zig cc`` (ziglang from PyPI: a C compiler
   that carries musl's headers and start files);
3. CPython itself, cross-compiled the same way, dynamically linked against musl (so it
   can load musllinux extension modules), installed under ``/usr`` (with a static
   libpython, as zig's linker does not take the ``-Wl,-h`` option a shared one is
   linked with);
4. musl's dynamic loader and C library from Debian's ``musl`` package, placed where
   Alpine has them (``/lib/ld-musl-aarch64.so.1``), a static BusyBox for ``/bin/sh``
   and ``/usr/bin/env`` (what a zipapp's ``#!`` line needs), and the terminal
   descriptions of Debian's ``ncurses-base`` in ``/usr/share/terminfo``.

What differs from a real Alpine host is written in the README (section "Emulated
hosts"); in short: no apk and no Alpine packages, BusyBox from Debian, no CA bundle,
CPython built here without the modules whose libraries are not built (sqlite3, bz2, lzma,
readline, dbm, tkinter, uuid).
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import tarfile
from pathlib import Path

from .. import tools, zigcc
from ..cache import Cache
from ..errors import ToolError
from . import HostSpec
from .sources import fetch

log = logging.getLogger(__name__)

TRIPLE = "aarch64-linux-musl"
LOADER = "lib/ld-musl-aarch64.so.1"
# Answers configure cannot find out when it cannot run what it compiles.
CONFIG_SITE = """\
ac_cv_file__dev_ptmx=yes
ac_cv_file__dev_ptc=no
ac_cv_buggy_getaddrinfo=no
"""
APPLETS = {
    "bin": ("sh", "ash", "cat", "cp", "echo", "false", "grep", "ln", "ls", "mkdir", "mv",
            "rm", "sed", "sleep", "true", "uname", "chmod", "touch", "date", "hostname"),
    "usr/bin": ("env", "head", "tail", "id", "wc", "tr", "cut", "which", "readlink", "test",
                "find"),
}  # fmt: skip


def _need(name: str, package: str) -> str:
    return zigcc.need_program(name, package, "making the musl root")


class _Steps:
    """Runs the build's commands with one environment and names each step on failure."""

    def __init__(self, spec: HostSpec, cache: Cache, work: Path) -> None:
        self.spec = spec
        self.work = work
        zig_cache = str(cache.tool_dir("zig"))
        self.env = {
            "HOME": str(work),
            "ZIG_GLOBAL_CACHE_DIR": zig_cache,
            "ZIG_LOCAL_CACHE_DIR": zig_cache,
            "PKG_CONFIG_LIBDIR": str(work / "deps" / "lib" / "pkgconfig"),
            "PKG_CONFIG_PATH": "",
        }
        self.jobs = str(os.cpu_count() or 2)

    def run(self, what: str, cmd: list[str | Path], cwd: Path, env: dict[str, str]) -> None:
        log.info("host %s: %s", self.spec.name, what, extra={"step": "host"})
        tools.run(
            cmd,
            what=f"{self.spec.name} root: {what}",
            cwd=cwd,
            env={**self.env, **env},
            timeout=3600,
            hint="re-run with --verbose to see every command; nothing was kept",
        )


def deb_files(deb: Path, folder: str) -> dict[str, bytes]:
    """The regular files under ``folder/`` of a Debian package (an ar archive holding
    data.tar.*), by their path in the package; links, devices and names that climb out
    are left out."""
    data = deb.read_bytes()
    if not data.startswith(b"!<arch>\n"):
        raise ToolError(f"{deb.name} is not a Debian package")
    prefix = folder.strip("/") + "/"
    found: dict[str, bytes] = {}
    offset = 8
    while offset + 60 <= len(data):
        header = data[offset : offset + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        body = data[offset + 60 : offset + 60 + size]
        if name.startswith("data.tar"):
            with tarfile.open(fileobj=io.BytesIO(body)) as tar:
                for info in tar.getmembers():
                    path = info.name.removeprefix("./")
                    if (path.startswith(prefix) and info.isfile()
                            and ".." not in path.split("/")):  # fmt: skip
                        handle = tar.extractfile(info)
                        if handle is not None:
                            found[path] = handle.read()
            break
        offset += 60 + size + (size % 2)
    return found


def deb_member(deb: Path, member: str) -> bytes:
    """One regular file out of a Debian package."""
    folder = member.rsplit("/", 1)[0] if "/" in member else ""
    body = deb_files(deb, folder).get(member) if folder else None
    if body is None:
        raise ToolError(f"{deb.name} has no file {member}")
    return body


def create(spec: HostSpec, root: Path, cache: Cache) -> dict[str, str]:
    """Fill ``root`` (an empty folder) with a musl aarch64 CPython; return what it is made of."""
    zig_bin = zigcc.zig("the musl root")
    readelf = _need("aarch64-linux-gnu-readelf", "binutils-aarch64-linux-gnu")
    _need("make", "make")
    _need("gcc", "gcc")
    _need("perl", "perl")  # OpenSSL's Configure
    files = {s.name: fetch(s, cache) for s in spec.sources}
    work = cache.tmp_dir()
    try:
        steps = _Steps(spec, cache, work)
        deps = work / "deps"
        # -dynamic: zig links musl programs statically unless told, and a static python
        # cannot load extension modules
        cc = f"{zig_bin} cc -target {TRIPLE} -dynamic"
        cross = {"CC": cc, "AR": f"{zig_bin} ar", "RANLIB": f"{zig_bin} ranlib"}
        built = ("cpython", "zlib", "libffi", "openssl", "ncurses")
        sources = {name: zigcc.unpack_source(path, work / f"src-{name}")
                   for name, path in files.items() if name in built}  # fmt: skip

        # 1. the build machine's CPython, same version: only to run CPython's build scripts
        build_py = work / "build-python"
        build_py.mkdir()
        steps.run(
            "configure CPython for this machine (to drive the cross build)",
            [sources["cpython"] / "configure", f"--prefix={work / 'python-for-build'}"],
            build_py,
            {"CC": "gcc", "CFLAGS": "-O1"},
        )
        steps.run("build CPython for this machine", ["make", f"-j{steps.jobs}"], build_py, {})
        for_build = build_py / "python"  # runs from its build folder; no install needed

        # 2. the libraries the stdlib modules link with, static, position-independent
        steps.run(
            "configure zlib",
            ["./configure", "--static", f"--prefix={deps}"],
            sources["zlib"],
            {**cross, "CFLAGS": "-O2 -fPIC"},
        )
        steps.run(
            "build zlib",
            ["make", f"-j{steps.jobs}", "install", f"AR={zig_bin}", "ARFLAGS=ar rc"],
            sources["zlib"],
            {},
        )
        steps.run(
            "configure libffi",
            ["./configure", f"--host={TRIPLE}", "--disable-shared", "--enable-static",
             "--with-pic", "--disable-docs", "--disable-multi-os-directory",
             # 3.4.4's static trampolines call an undeclared function, an error for clang
             "--disable-exec-static-tramp", f"--prefix={deps}"],
            sources["libffi"],
            {**cross, "CFLAGS": "-O2"},
        )  # fmt: skip
        steps.run("build libffi", ["make", f"-j{steps.jobs}", "install"], sources["libffi"], {})
        steps.run(
            "configure OpenSSL",
            ["perl", "./Configure", "linux-aarch64", "no-shared", "no-module", "no-tests",
             "no-docs", "no-apps", f"--prefix={deps}", "--libdir=lib",
             # where Alpine's OpenSSL looks for its configuration and CA certificates
             "--openssldir=/etc/ssl", "-O2"],
            sources["openssl"],
            cross,
        )  # fmt: skip
        steps.run("build OpenSSL's libraries", ["make", f"-j{steps.jobs}", "build_libs"],
                  sources["openssl"], {})  # fmt: skip
        steps.run("install OpenSSL's libraries", ["make", "install_dev"], sources["openssl"], {})
        steps.run(
            "configure ncurses",
            ["./configure", f"--host={TRIPLE}", "--build=x86_64-pc-linux-gnu",
             f"--prefix={deps}", "--without-shared", "--with-normal", "--without-debug",
             "--without-ada", "--without-cxx", "--without-cxx-binding", "--without-progs",
             "--without-tests", "--without-manpages", "--enable-widec", "--disable-db-install",
             "--disable-stripping", "--disable-pc-files",
             # Alpine's search path for terminal descriptions
             "--with-terminfo-dirs=/etc/terminfo:/usr/share/terminfo",
             "--with-default-terminfo-dir=/usr/share/terminfo"],
            sources["ncurses"],
            {**cross, "CFLAGS": "-O2 -fPIC", "BUILD_CC": "gcc"},
        )  # fmt: skip
        steps.run("build ncurses", ["make", f"-j{steps.jobs}", "install"], sources["ncurses"], {})

        # 3. CPython for aarch64-linux-musl, installed into the root
        (work / "config.site").write_text(CONFIG_SITE, encoding="utf-8")
        target_build = work / "build-musl"
        target_build.mkdir()
        steps.run(
            "configure CPython for aarch64-linux-musl",
            [sources["cpython"] / "configure", f"--host={TRIPLE}",
             "--build=x86_64-pc-linux-gnu", f"--with-build-python={for_build}",
             "--prefix=/usr", "--with-ensurepip=no", f"--with-openssl={deps}",
             "--with-openssl-rpath=no"],
            target_build,
            {
                **cross,
                "READELF": readelf,
                "CONFIG_SITE": str(work / "config.site"),
                # zig makes __DATE__ an error (reproducible builds); CPython uses it once
                "CFLAGS": "-O2 -Wno-error=date-time",
                # configure looks for curses.h with the preprocessor's flags
                "CPPFLAGS": f"-I{deps / 'include' / 'ncursesw'} -I{deps / 'include'}",
                "ZLIB_CFLAGS": f"-I{deps / 'include'}",
                "ZLIB_LIBS": f"-L{deps / 'lib'} -lz",
                "LIBFFI_CFLAGS": f"-I{deps / 'include'}",
                "LIBFFI_LIBS": f"-L{deps / 'lib'} -lffi",
                "CURSES_CFLAGS": f"-I{deps / 'include' / 'ncursesw'} -DNCURSES_WIDECHAR",
                "CURSES_LIBS": f"-L{deps / 'lib'} -lncursesw",
                "PANEL_CFLAGS": f"-I{deps / 'include' / 'ncursesw'}",
                "PANEL_LIBS": f"-L{deps / 'lib'} -lpanelw",
            },
        )  # fmt: skip
        steps.run("build CPython for aarch64-linux-musl", ["make", f"-j{steps.jobs}"],
                  target_build, {})  # fmt: skip
        steps.run("install it into the root", ["make", "install", f"DESTDIR={root}"],
                  target_build, {})  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _finish_root(root, spec, files)
    return {
        "cpython": spec.source("cpython").what,
        "zlib": spec.source("zlib").what,
        "libffi": spec.source("libffi").what,
        "openssl": spec.source("openssl").what,
        "ncurses": spec.source("ncurses").what,
        "terminfo": spec.source("terminfo").what,
        "musl": spec.source("musl").what,
        "busybox": spec.source("busybox").what,
        "compiler": f"zig {tools.tool_version('ziglang')} cc -target {TRIPLE}",
    }


def _finish_root(root: Path, spec: HostSpec, files: dict[str, Path]) -> None:
    """musl's loader and C library, BusyBox, the folders and files a system has."""
    lib = root / "lib"
    lib.mkdir(exist_ok=True)
    loader = root / LOADER
    loader.write_bytes(deb_member(files["musl"], "usr/lib/aarch64-linux-musl/libc.so"))
    loader.chmod(0o755)
    (lib / "libc.musl-aarch64.so.1").symlink_to("ld-musl-aarch64.so.1")
    # musl's loader acts as ldd when called so (as on Alpine); pex asks it for musl's version
    (root / "usr" / "bin").mkdir(parents=True, exist_ok=True)
    (root / "usr" / "bin" / "ldd").symlink_to("/" + LOADER)
    for member, body in deb_files(files["terminfo"], "usr/share/terminfo").items():
        (root / member).parent.mkdir(parents=True, exist_ok=True)
        (root / member).write_bytes(body)
    busybox = root / "bin" / "busybox"
    busybox.parent.mkdir(exist_ok=True)
    busybox.write_bytes(deb_member(files["busybox"], "usr/bin/busybox"))
    busybox.chmod(0o755)
    for folder, names in APPLETS.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            link = root / folder / name
            if not link.exists():
                link.symlink_to("/bin/busybox")
    for folder, mode in (("tmp", 0o1777), ("root", 0o700), ("dev", 0o755), ("proc", 0o555),
                         ("sys", 0o555), ("etc", 0o755), ("var/tmp", 0o1777)):  # fmt: skip
        path = root / folder
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(mode)
    etc = root / "etc"
    (etc / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n"
    )
    (etc / "group").write_text("root:x:0:\nnobody:x:65534:\n")
    (etc / "hosts").write_text("127.0.0.1\tlocalhost\n::1\tlocalhost\n")
    (etc / "os-release").write_text(
        'NAME="buildkit musl stand-in"\nID=buildkit-musl\n'
        f'PRETTY_NAME="buildkit {spec.name} stand-in (musl, CPython {spec.python_version})"\n'
    )
    # The test suite and IDLE are not part of Alpine's python3 package either.
    for extra in ("test", "idlelib", "tkinter", "turtledemo"):
        shutil.rmtree(root / "usr" / "lib" / f"python{spec.python_version}" / extra,
                      ignore_errors=True)  # fmt: skip
