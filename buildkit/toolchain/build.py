"""Compile the toolchain of one target: the stdlib's libraries, then CPython, with zig.

Every compile is ``zig cc -target <zig_target>`` (zig carries the C library's headers
and, for glibc, stubs of each version's symbols: linking against ``x86_64-linux-gnu.2.17``
can only use what glibc 2.17 had, and configure's link tests find that out). No
compiler, header or library of the build host is used: zig does not look at
``/usr/include``; make and perl (OpenSSL's Configure) are the only host programs.

The libraries are static and position-independent, so each extension module carries
what it uses (no libssl.so to copy from anywhere); CPython is installed with its static
libpython (what Nuitka links into a binary) under ``python/`` of the output folder.
Flags: ``-O2`` (zig builds without optimisation with traps for undefined behaviour),
the default hardening policy's (:mod:`buildkit.hardening`), and prefix maps so no
build path is left in the objects.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

from .. import hardening, tools, zigcc
from ..cache import Cache
from ..errors import ToolError
from ..hosts.sources import fetch
from ..targets import Target, host_triple
from . import ToolchainSpec

log = logging.getLogger(__name__)

#: The install prefix CPython is configured with (it finds its files relative to the
#: executable at run time; the prefix only appears in its build configuration).
PREFIX = "/opt/buildkit/python"
#: Where the programs for the build machine go, in the toolchain's folder.
PROGRAMS = "programs/bin"
#: zig's compiler-rt with libc's stack protector symbols left to libc (aarch64 targets):
#: see :meth:`_Build.compiler_rt`. Linked instead of zig's own (``-rtlib=none``).
COMPILER_RT = "compiler-rt/libcompiler_rt.a"
#: Architectures whose canary is the global __stack_chk_guard libc fills at start (x86
#: reads it from the thread control block: zig's global is never used there).
GLOBAL_GUARD_ARCHES = frozenset({"aarch64", "arm"})
#: The symbols zig's compiler-rt defines (weak, hidden) for programs without a libc;
#: made local in our copy so a program's references bind to libc's.
_LIBC_SSP = ("__stack_chk_guard", "__stack_chk_fail")
#: Where the build folder is said to be in debug information and ``__FILE__``.
SOURCE_ROOT = "/buildkit-toolchain"
_OPENSSL_TARGETS = {"x86_64": "linux-x86_64", "aarch64": "linux-aarch64"}
# Answers configure cannot find out when it cannot run what it compiles (cross builds).
CONFIG_SITE = """\
ac_cv_file__dev_ptmx=yes
ac_cv_file__dev_ptc=no
ac_cv_buggy_getaddrinfo=no
"""


STACK_STRONG = "-fstack-protector-strong"
STACK_ALL = "-fstack-protector-all"
#: The ELF note every object the toolchain compiles carries (name "buildkit", type 1):
#: the hardening flags it was compiled with. A COMDAT group keeps one copy per linked file.
NOTE_NAME = "buildkit"


def note_header(
    flags: list[str], *, who: str = "toolchain", group: str = "buildkit.note.flags"
) -> str:
    """A C header (given to every compile with -include) that puts the note in the object:
    where no call had a size the compiler could check, no __*_chk import shows that
    _FORTIFY_SOURCE was on, and the note says so (see audit/elf.py). The section is
    COMDAT (one copy per linked file and ``group``: the toolchain's objects and the ones
    Nuitka compiles for the recipe each keep their own) and SHF_GNU_RETAIN ("R"): without
    it the linker's --gc-sections, which zig turns on at -O2, drops the note from every
    linked file."""
    text = f"buildkit {who} cflags: " + " ".join(flags)
    if any(c in text for c in '"\\\n') or not group.replace(".", "").isalnum():
        raise ToolError(f"a hardening flag cannot go into the toolchain's note: {text!r}")
    size = len(text.encode()) + 1
    return (
        "/* buildkit: the hardening flags of this object, as an ELF note */\n"
        "#ifndef __ASSEMBLER__\n"  # assembler sources are preprocessed with it too
        f'__asm__(".pushsection .note.buildkit,\\"aGR\\",@note,{group},comdat\\n"\n'
        f'        ".balign 4\\n.long {len(NOTE_NAME) + 1}\\n.long {size}\\n.long 1\\n"\n'
        f'        ".asciz \\"{NOTE_NAME}\\"\\n.balign 4\\n.asciz \\"{text}\\"\\n"\n'
        '        ".balign 4\\n.popsection\\n");\n'
        "#endif\n"
    )


def dynamic_flag(zig_target: str) -> str:
    """zig links musl programs statically unless told, and a static program cannot load
    extension modules: for musl, " -dynamic" (its loader then is /lib/ld-musl-ARCH.so.1)."""
    return " -dynamic" if "musl" in zig_target else ""


def zig() -> Path:
    return zigcc.zig("the hermetic toolchain")


class _Build:
    """The commands of one toolchain build, with one environment; each step named."""

    def __init__(self, spec: ToolchainSpec, target: Target, cache: Cache, work: Path) -> None:
        self.spec = spec
        self.work = work
        self.deps = work / "deps"
        self.zig = zig()
        self.jobs = str(os.cpu_count() or 2)
        self.cross = (target.os, target.arch) != host_triple()[:2]
        self.readelf: Path | None = None  # the toolchain's, once binutils is built
        self.objcopy: Path | None = None
        self.rt_link = ""  # "-rtlib=none <our compiler-rt>" once it is made (aarch64)
        flags = hardening.flags_for(None, target.arch, target.os, shared=True)
        # Every function gets a canary (not only those -strong picks): a module with no
        # function -strong would protect still shows one, so the audit and checksec can
        # see the flag in every file.
        hardened = [STACK_ALL if f == STACK_STRONG else f for f in flags.cflags]
        note = work / "buildkit-note.h"
        note.write_text(note_header(hardened), encoding="utf-8")
        self.cflags = " ".join(
            ["-O2", "-fPIC", *hardened, "-include", str(note),
             f"-ffile-prefix-map={work}={SOURCE_ROOT}"]
        )  # fmt: skip
        self.ldflags = " ".join(flags.ldflags)
        self.cc = f"{self.zig} cc -target {spec.zig_target}{dynamic_flag(spec.zig_target)}"
        # for programs run during the build (ncurses's, CPython's for a cross build):
        # this machine's architecture and C library (musl in an Alpine container)
        _, arch, libc = host_triple()
        self.build_cc = f"{self.zig} cc -target {arch}-linux-{'musl' if libc == 'musl' else 'gnu'}"
        zig_cache = str(cache.tool_dir("zig"))
        self.env = {
            "HOME": str(work),
            "ZIG_GLOBAL_CACHE_DIR": zig_cache,
            "ZIG_LOCAL_CACHE_DIR": zig_cache,
            "PKG_CONFIG_LIBDIR": str(self.deps / "lib" / "pkgconfig"),
            "PKG_CONFIG_PATH": "",
            "CC": self.cc,
            "AR": f"{self.zig} ar",
            "RANLIB": f"{self.zig} ranlib",
        }

    def host_args(self) -> list[str]:
        if not self.cross:
            return []
        triple = self.spec.zig_target.split(".")[0]  # without the glibc version
        return [f"--host={triple}", f"--build={host_triple()[1]}-pc-linux-gnu"]

    def run(self, what: str, cmd: list[str | Path], cwd: Path, env: dict[str, str]) -> None:
        log.info("toolchain %s: %s", self.spec.target, what, extra={"step": "toolchain"})
        tools.run(
            cmd,
            what=f"toolchain {self.spec.target}: {what}",
            cwd=cwd,
            env={**self.env, **env},
            timeout=3600,
            hint="re-run with --verbose to see every command; nothing was kept",
        )

    def make(self, what: str, cwd: Path, *args: str) -> str:
        log.info("toolchain %s: %s", self.spec.target, what, extra={"step": "toolchain"})
        proc = tools.run(
            ["make", f"-j{self.jobs}", *args],
            what=f"toolchain {self.spec.target}: {what}",
            cwd=cwd,
            env=self.env,
            timeout=3600,
            hint="re-run with --verbose to see every command; nothing was kept",
        )
        return proc.stdout or ""

    # -- the libraries, static and position-independent, installed into deps/ --------

    def zlib(self, src: Path) -> None:
        self.run("configure zlib", ["./configure", "--static", f"--prefix={self.deps}"], src,
                 {"CFLAGS": self.cflags})  # fmt: skip
        self.make("build zlib", src, "install", f"AR={self.zig}", "ARFLAGS=ar rc")

    def bzip2(self, src: Path) -> None:
        cflags = f"CFLAGS={self.cflags} -D_FILE_OFFSET_BITS=64"
        self.make("build bzip2", src, "libbz2.a", f"CC={self.cc}", f"AR={self.zig} ar",
                  f"RANLIB={self.zig} ranlib", cflags)  # fmt: skip
        (self.deps / "lib").mkdir(parents=True, exist_ok=True)
        (self.deps / "include").mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / "libbz2.a", self.deps / "lib" / "libbz2.a")
        shutil.copy2(src / "bzlib.h", self.deps / "include" / "bzlib.h")

    def xz(self, src: Path) -> None:
        self.run(
            "configure liblzma",
            ["./configure", *self.host_args(), f"--prefix={self.deps}", "--disable-shared",
             "--enable-static", "--with-pic", "--disable-xz", "--disable-xzdec",
             "--disable-lzmadec", "--disable-lzmainfo", "--disable-lzma-links",
             "--disable-scripts", "--disable-doc", "--disable-nls"],
            src,
            {"CFLAGS": self.cflags},
        )  # fmt: skip
        self.make("build liblzma", src, "install")

    def libffi(self, src: Path) -> None:
        self.run(
            "configure libffi",
            ["./configure", *self.host_args(), "--disable-shared", "--enable-static",
             "--with-pic", "--disable-docs", "--disable-multi-os-directory",
             # 3.4.4's static trampolines call an undeclared function, an error for clang
             "--disable-exec-static-tramp", f"--prefix={self.deps}"],
            src,
            {"CFLAGS": self.cflags},
        )  # fmt: skip
        self.make("build libffi", src, "install")

    def openssl(self, src: Path, arch: str) -> None:
        self.run(
            "configure OpenSSL",
            ["perl", "./Configure", _OPENSSL_TARGETS[arch], "no-shared", "no-module",
             "no-tests", "no-docs", "no-apps", f"--prefix={self.deps}", "--libdir=lib",
             # where Debian's, Ubuntu's and Alpine's OpenSSL look for their configuration
             # and CA certificates (RHEL links /etc/ssl/certs there too)
             "--openssldir=/etc/ssl", *self.cflags.split(), *self.ldflags.split()],
            src,
            {},
        )  # fmt: skip
        self.make("build OpenSSL's libraries", src, "build_libs")
        self.run("install OpenSSL's libraries", ["make", "install_dev"], src, {})

    def ncurses(self, src: Path) -> None:
        self.run(
            "configure ncurses",
            ["./configure", *self.host_args(), f"--prefix={self.deps}", "--without-shared",
             "--with-normal", "--without-debug", "--without-ada", "--without-cxx",
             "--without-cxx-binding", "--without-progs", "--without-tests",
             "--without-manpages", "--enable-widec", "--disable-db-install",
             "--disable-stripping", "--disable-pc-files",
             # where Debian (/lib/terminfo for the basic ones), RHEL and Alpine keep them
             "--with-terminfo-dirs=/etc/terminfo:/lib/terminfo:/usr/share/terminfo",
             "--with-default-terminfo-dir=/usr/share/terminfo"],
            src,
            {"CFLAGS": self.cflags, "BUILD_CC": self.build_cc},
        )  # fmt: skip
        self.make("build ncurses", src, "install")

    # -- the programs a foreign builder runs, static executables for this machine ------

    def program_cc(self, lang: str = "cc") -> list[str | Path]:
        # musl: zig links it statically, so they also run inside a root of another
        # architecture (no loader or library of this machine needed there)
        return [self.zig, lang, "-target", f"{host_triple()[1]}-linux-musl"]

    def binutils(self, src: Path, bin_dir: Path, arch: str) -> None:
        """readelf (Nuitka's, for RPATHs) and strip (buildkit's strip plugin) for the
        target's architecture."""
        folder = self.work / "build-binutils"
        folder.mkdir()
        env = {
            "CC": " ".join(map(str, self.program_cc())),
            "CXX": " ".join(map(str, self.program_cc("c++"))),
            "CFLAGS": "-O2",
            "CXXFLAGS": "-O2",
        }
        self.run(
            "configure binutils (readelf, strip, objcopy)",
            [src / "configure", f"--target={arch}-linux-gnu", "--disable-nls",
             "--disable-werror", "--disable-gdb", "--disable-gdbserver", "--disable-gprof",
             "--disable-gprofng", "--disable-ld", "--disable-gold", "--disable-gas",
             "--disable-sim", "--disable-libctf", "--disable-plugins", "--disable-shared",
             "--enable-static", "--without-zstd", "--without-debuginfod"],
            folder,
            env,
        )  # fmt: skip
        # MAKEINFO=true: no manuals (makeinfo is not needed to build the programs)
        make = ["make", f"-j{self.jobs}", "MAKEINFO=true", "all-binutils"]
        self.run("build binutils (readelf, strip, objcopy)", [*make], folder, env)
        bin_dir.mkdir(parents=True, exist_ok=True)
        for built, name in (("readelf", "readelf"), ("strip-new", "strip"), ("objcopy", "objcopy")):
            shutil.copy2(folder / "binutils" / built, bin_dir / name)
        self.readelf = bin_dir / "readelf"
        self.objcopy = bin_dir / "objcopy"

    def compiler_rt(self, dest: Path) -> None:
        """zig links its compiler-rt (one object) into any program that needs one of its
        helpers (on aarch64, every ``long double`` operation does). That object also
        defines, weak and hidden, ``__stack_chk_guard`` (a constant: "TODO: initialize
        the canary with random data") and ``__stack_chk_fail``, for programs without a
        libc; a definition in the program wins over libc's, so every canary in it is
        compared against a value an attacker knows. Our copy has them local: the
        program's references bind to libc's guard, which libc fills from AT_RANDOM."""
        if self.objcopy is None:
            raise ToolError(
                f"the {self.spec.target} toolchain lists no binutils: its compiler-rt "
                "cannot be made to use libc's stack guard",
                hint="add binutils to the target's [programs] in buildkit/data/toolchain.toml",
            )
        folder = self.work / "compiler-rt"
        folder.mkdir()
        probe = folder / "probe.c"
        probe.write_text(
            "#include <stdlib.h>\n#include <stdio.h>\n"
            "int main(int argc, char **argv) {\n"
            "  char b[32]; long double x = strtold(argv[0], 0) * argc;\n"
            '  snprintf(b, sizeof b, "%Lf", x); puts(b); return 0;\n}\n',
            encoding="utf-8",
        )
        cc = [*self.cc.split(), "-O2", *self.cflags.split(), *self.ldflags.split()]
        log.info("toolchain %s: compiler-rt", self.spec.target, extra={"step": "toolchain"})
        said = tools.run(
            [*cc, "-v", probe, "-o", folder / "probe"],
            what=f"toolchain {self.spec.target}: find zig's compiler-rt",
            cwd=folder,
            env={**self.env},
        )
        found = re.findall(r"(/\S+/libcompiler_rt\.a)\b", (said.stderr or "") + (said.stdout or ""))
        if not found:
            raise ToolError(
                f"zig {zigcc.zig_version()} did not name its compiler-rt in a verbose link",
                hint="buildkit expects zig to link libcompiler_rt.a; check the zig version",
            )
        listed = tools.run(
            [self.zig, "ar", "t", found[0]],
            what=f"toolchain {self.spec.target}: list zig's compiler-rt",
            cwd=folder,
            env=self.env,
        ).stdout.split("\n")
        if len([line for line in listed if line.strip()]) != 1:
            raise ToolError(
                f"zig's compiler-rt ({found[0]}) is not the one object buildkit expects",
                hint="see COMPILER_RT in buildkit/toolchain/build.py for what is done with it",
            )
        member = folder / "compiler_rt.o"
        tools.run(
            [self.zig, "ar", "p", found[0]],  # its one member, whatever its name
            what=f"toolchain {self.spec.target}: read zig's compiler-rt",
            cwd=folder,
            env=self.env,
            to_files=(member, folder / "ar.err"),
        )
        local = [f"--localize-symbol={name}" for name in _LIBC_SSP]
        self.run("make libc's stack guard win", [self.objcopy, *local, member], folder, {})
        out = dest / COMPILER_RT
        out.parent.mkdir(parents=True, exist_ok=True)
        self.run("pack compiler-rt", [self.zig, "ar", "rcsD", out, member], folder, {})
        self.rt_link = f"-rtlib=none {out}"
        self.run(
            "link a probe with it",
            [*cc, *self.rt_link.split(), probe, "-o", folder / "probe"],
            folder,
            {},
        )
        _check_libc_guard(folder / "probe", self.spec.zig_target)

    def patchelf(self, src: Path, bin_dir: Path, version: str) -> None:
        """patchelf (Nuitka sets the RPATH of the extension modules it ships): one C++
        file, compiled directly (the release tarball has no configure script)."""
        bin_dir.mkdir(parents=True, exist_ok=True)
        self.run(
            "build patchelf",
            [*self.program_cc("c++"), "-O2", "-std=c++17", "-D_FILE_OFFSET_BITS=64",
             f'-DPACKAGE_STRING="patchelf {version}"', f"-I{src / 'src'}",
             src / "src" / "patchelf.cc", "-o", bin_dir / "patchelf"],
            src,
            {},
        )  # fmt: skip

    # -- CPython ---------------------------------------------------------------------

    def build_python(self, src: Path) -> Path:
        """For a cross build: a CPython for this machine, same version, to run CPython's
        build scripts (never installed, never shipped)."""
        folder = self.work / "build-python"
        folder.mkdir()
        self.run("configure CPython for this machine (drives the cross build)",
                 [src / "configure"], folder,
                 {"CC": self.build_cc, "CFLAGS": "-O1 -Wno-error=date-time",
                  # not the target's libraries (3.12's configure asks pkg-config for them)
                  "PKG_CONFIG_LIBDIR": str(folder / "none")})  # fmt: skip
        self.make("build CPython for this machine", folder)
        return folder / "python"

    def cpython(self, src: Path, staging: Path, libraries: set[str]) -> None:
        inc, lib = self.deps / "include", self.deps / "lib"
        env = {
            # zig makes __DATE__ an error (reproducible builds); CPython uses it once
            "CFLAGS": f"{self.cflags} -Wno-error=date-time",
            # -L: 3.11's setup.py finds libffi and ncursesw in the folders LDFLAGS names
            "LDFLAGS": f"{self.ldflags} {self.rt_link} -L{lib}",
            # static OpenSSL needs libdl (glibc before 2.34) and threads
            "LIBS": "-ldl -lpthread",
            "CPPFLAGS": f"-I{inc / 'ncursesw'} -I{inc}",
            # modules whose libraries the toolchain does not build: not tried at all
            **{f"py_cv_module_{m}": "n/a" for m in _NOT_BUILT},
        }
        pkgs = {
            "zlib": ("ZLIB", "-lz"),
            "bzip2": ("BZIP2", "-lbz2"),
            "xz": ("LIBLZMA", "-llzma"),
            "libffi": ("LIBFFI", "-lffi"),
        }
        for name, (var, link) in pkgs.items():
            if name in libraries:
                env[f"{var}_CFLAGS"] = f"-I{inc}"
                env[f"{var}_LIBS"] = f"-L{lib} {link}"
        if "ncurses" in libraries:
            env["CURSES_CFLAGS"] = f"-I{inc / 'ncursesw'} -DNCURSES_WIDECHAR"
            env["CURSES_LIBS"] = f"-L{lib} -lncursesw"
            env["PANEL_CFLAGS"] = f"-I{inc / 'ncursesw'}"
            env["PANEL_LIBS"] = f"-L{lib} -lpanelw"
        args: list[str | Path] = [
            src / "configure", *self.host_args(), f"--prefix={PREFIX}",
            "--with-ensurepip=no", "--disable-test-modules",
            # 3.12's perf trampoline calls __clear_cache, which only zig's compiler-rt
            # has: linking that in brings its constant __stack_chk_guard, which then
            # wins over libc's random one (aarch64 reads the canary from that global).
            # 3.11's configure ignores the option (a warning).
            "--disable-perf-trampoline",
        ]  # fmt: skip
        if "openssl" in libraries:
            args += [f"--with-openssl={self.deps}", "--with-openssl-rpath=no"]
        if self.cross:
            (self.work / "config.site").write_text(CONFIG_SITE, encoding="utf-8")
            env["CONFIG_SITE"] = str(self.work / "config.site")
            # configure wants a readelf for the target in a cross build: the toolchain's
            # own (not one of the build host's binutils packages it would otherwise find)
            if self.readelf is not None:
                env["READELF"] = str(self.readelf)
            args.append(f"--with-build-python={self.build_python(src)}")
        folder = self.work / "build-target"
        folder.mkdir()
        self.run(f"configure CPython for {self.spec.zig_target}", args, folder, env)
        # read by makesetup before Setup.stdlib (the first rule for a module wins)
        (folder / "Modules" / "Setup.local").write_text(SETUP_LOCAL, encoding="utf-8")
        said = self.make(f"build CPython for {self.spec.zig_target}", folder)
        _all_modules_built(said, folder, libraries)
        self.run("install CPython", ["make", "install", f"DESTDIR={staging}"], folder, {})


#: CPython 3.11's setup.py (it builds the shared stdlib modules) adds the build host's
#: /usr/local and multiarch folders (/usr/include/x86_64-linux-gnu) to every compile:
#: the host's glibc headers would then mix with zig's. Each edit must apply.
_SETUP_PY_EDITS = (
    (
        "        if not CROSS_COMPILING:\n"
        "            add_dir_to_list(self.compiler.library_dirs, '/usr/local/lib')\n"
        "            add_dir_to_list(self.compiler.include_dirs, '/usr/local/include')\n",
        "        # buildkit: no /usr/local of the build host\n",
    ),
    (
        "        self.add_multiarch_paths()\n",
        "        # buildkit: no multiarch folders of the build host\n",
    ),
    (
        "            if not CROSS_COMPILING:\n"
        "                curses_includes.append('/usr/include/ncursesw')\n",
        "            # buildkit: no /usr/include/ncursesw of the build host\n",
    ),
)


def _hermetic_setup_py(src: Path) -> None:
    """Remove the build host's folders from CPython's setup.py (3.11 has one; later
    versions build every module with make and need no edit)."""
    setup = src / "setup.py"
    if not setup.is_file():
        return
    text = setup.read_text(encoding="utf-8")
    for old, new in _SETUP_PY_EDITS:
        if text.count(old) != 1:
            raise ToolError(
                f"CPython's setup.py does not read as expected (looked for {old.strip()!r})",
                hint="the pinned CPython changed: update _SETUP_PY_EDITS in toolchain/build.py",
            )
        text = text.replace(old, new)
    setup.write_text(text, encoding="utf-8")


#: Stdlib modules compiled into libpython instead of shipped as .so files: none of their
#: functions has a stack frame, so -fstack-protector-all cannot give them a canary and a
#: checker (checksec, buildkit's audit) would rightly find none in their own file.
SETUP_LOCAL = """\
# buildkit: built into libpython (no function here has a stack frame to protect)
*static*
_heapq _heapqmodule.c
_contextvars _contextvarsmodule.c
_statistics _statisticsmodule.c
_typing _typingmodule.c
"""

#: stdlib modules left out: their libraries are not in the toolchain (no ops script of
#: ours needs them; a recipe that does fails its checks, as on a host without them).
_NOT_BUILT = ("nis", "_uuid", "_dbm", "_gdbm", "_tkinter", "_crypt", "readline", "_sqlite3")

#: The stdlib modules each library is built for: the build fails when one is missing.
MODULES = {
    "zlib": ("zlib",),
    "bzip2": ("_bz2",),
    "xz": ("_lzma",),
    "libffi": ("_ctypes",),
    "openssl": ("_ssl", "_hashlib"),
    "ncurses": ("_curses", "_curses_panel"),
}
_CONFIG_LOG_HINTS = {"_ssl": "OpenSSL", "_hashlib": "OpenSSL", "_ctypes": "ffi"}


def _all_modules_built(said: str, folder: Path, libraries: set[str]) -> None:
    """CPython's build succeeds without the modules whose library it could not use: make
    that an error naming them, with what configure found out about the library."""
    lines = said.splitlines()
    problems = [
        text.strip()
        for i, line in enumerate(lines)
        if "necessary bits" in line or "Failed to build" in line or "could not be imported" in line
        for text in lines[i : i + 3]
    ]
    # setup.py says why it removed a module it built: "renaming "_ctypes" since importing
    # it failed: <the ImportError>"
    problems += [line.strip() for line in lines if "since importing it failed" in line]
    wanted = [m for name in sorted(libraries) for m in MODULES.get(name, ())]
    missing = [m for m in wanted if re.search(rf"(^|\s){re.escape(m)}(\s|$)", "\n".join(problems))]
    if not missing:
        return
    evidence = ""
    log_file = folder / "config.log"
    if log_file.is_file():
        words = {_CONFIG_LOG_HINTS.get(m, m.lstrip("_")) for m in missing}
        lines = log_file.read_text(errors="replace").splitlines()
        hits = [i for i, line in enumerate(lines) if any(w in line for w in words)]
        if hits:
            evidence = "\nconfig.log:\n" + "\n".join(lines[hits[-1] - 25 : hits[-1] + 5])
    raise ToolError(
        f"CPython built without {', '.join(missing)}: " + " / ".join(problems)[:800] + evidence,
        hint="the library they need did not link with this compiler and target; see above",
    )


def build(spec: ToolchainSpec, target: Target, cache: Cache, dest: Path) -> None:
    """Compile the toolchain into ``dest`` (an empty folder): ``dest/python`` holds the
    installed CPython. Sources are fetched (or taken from the cache) and verified first:
    a mismatch stops before anything is unpacked."""
    for program, package in (("make", "make"), ("perl", "perl")):
        zigcc.need_program(program, package, "building the toolchain")
    archives = {p.source.name: fetch(p.source, cache) for p in spec.sources}
    work = cache.tmp_dir("toolchain-")
    try:
        steps = _Build(spec, target, cache, work)
        for pinned in spec.programs:
            name = pinned.source.name
            src = zigcc.unpack_source(archives[name], work / f"src-{name}")
            if name == "binutils":
                steps.binutils(src, dest / PROGRAMS, target.arch)
            else:
                steps.patchelf(src, dest / PROGRAMS, pinned.version)
        if target.arch in GLOBAL_GUARD_ARCHES:
            steps.compiler_rt(dest)
        libraries = {p.source.name for p in spec.libraries}
        for pinned in spec.libraries:
            name = pinned.source.name
            src = zigcc.unpack_source(archives[name], work / f"src-{name}")
            if name == "openssl":
                steps.openssl(src, target.arch)
            else:
                getattr(steps, name)(src)
        cpython = zigcc.unpack_source(archives[spec.cpython.source.name], work / "src-cpython")
        _hermetic_setup_py(cpython)
        staging = work / "staging"
        steps.cpython(cpython, staging, libraries)
        installed = staging / PREFIX.lstrip("/")
        _finish(installed, spec.python, steps.rt_link)
        os.rename(installed, dest / "python")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _check_libc_guard(program: Path, zig_target: str) -> None:
    """The probe linked with our compiler-rt takes __stack_chk_guard from libc."""
    import lief

    binary = lief.ELF.parse(str(program))
    imported = {s.name for s in binary.imported_symbols} if binary is not None else set()
    if "__stack_chk_guard" not in imported:
        raise ToolError(
            f"a program linked for {zig_target} with buildkit's compiler-rt still has its "
            "own __stack_chk_guard (a constant canary)",
            hint="zig's compiler-rt changed; see COMPILER_RT in buildkit/toolchain/build.py",
        )


def rt_link_args(folder: Path) -> list[str]:
    """What a link for the toolchain in ``folder`` adds: our compiler-rt, when it has one."""
    rt = folder / COMPILER_RT
    return ["-rtlib=none", str(rt)] if rt.is_file() else []


def _finish(prefix: Path, python: str, rt_link: str = "") -> None:
    """Drop what no binary needs; put the static libpython where Nuitka looks for it;
    forget the build's compiler-rt link flags (a path in the build's staging folder),
    which CPython records for extension builds: a link with the toolchain adds its
    compiler-rt by itself (:func:`rt_link_args`)."""
    stdlib = prefix / "lib" / f"python{python}"
    if rt_link:
        recorded = [
            *stdlib.glob("_sysconfigdata_*.py"),
            *stdlib.glob(f"config-{python}*/Makefile"),
            *(prefix / "bin").glob("python*-config"),
        ]
        for path in recorded:
            if path.is_symlink():
                continue
            text = path.read_text(encoding="utf-8")
            # the sysconfig data wraps long strings: each word goes on its own
            scrubbed = text
            for word in rt_link.split():
                scrubbed = scrubbed.replace(f"{word} ", "").replace(word, "")
            if scrubbed != text:
                path.write_text(scrubbed, encoding="utf-8")
        for cached in stdlib.glob("__pycache__/_sysconfigdata_*.pyc"):
            cached.unlink()
    for extra in ("test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3"):
        shutil.rmtree(stdlib / extra, ignore_errors=True)
    static = next(stdlib.glob(f"config-{python}*/libpython{python}.a"), None)
    if static is None:
        raise ToolError(
            f"the CPython build left no libpython{python}.a",
            hint="re-run with --verbose; the static library is what Nuitka links",
        )
    target = prefix / "lib" / static.name
    if not target.exists():
        os.link(static, target)
