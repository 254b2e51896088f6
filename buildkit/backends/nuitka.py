"""Nuitka native binaries: onefile (default) or a standalone folder, built on this host.

Nuitka cannot cross-compile: it builds for the platform of the interpreter that runs it.
For a target with a hermetic toolchain (``buildkit/data/toolchain.toml``: linux-amd64),
that interpreter is the toolchain's CPython (built from pinned sources for the target's
glibc baseline, see :mod:`buildkit.toolchain`) and the C compiler is the toolchain's zig
with the same ``-target``: neither the host's Python nor its C compiler take part, so
the binary runs on every glibc from the baseline on and has the same bytes on any build
host. Other targets build with the Python that runs buildkit and the host's gcc (the
emulated linux-arm64 builder). Hardening flags from the recipe's policy go in through CFLAGS/LDFLAGS
(Nuitka reads them for the program and the onefile bootstrap). Onefile binaries extract
once into a per-user cache folder named by the build info's digest, so a warm start costs
about what the standalone program costs and a new build never reuses an old extraction.

What makes the onefile start fast: Nuitka's bootstrap checks every extracted file against
its CRC-32 at each start, so its cost grows with the payload. Two settings keep that small:
the interpreter's static libpython is linked into the program when it can go into a PIE
(no 6 MB shared libpython to check and relocate), and the recipe's ``exclude`` option lists
modules the program never imports, which Nuitka would otherwise pack (with their native
libraries, such as OpenSSL for ``ssl``).
"""

from __future__ import annotations

import contextlib
import gzip
import os
import platform
import re
import shlex
import shutil
import sys
import sysconfig
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path

from .. import hardening, imports, pysite, tools
from ..buildinfo import MEMBER
from ..cache import Cache
from ..checks.trace import MODES as TRACE_MODES
from ..errors import InputError, ToolError
from ..recipe import MODULES, PATHS, Hardening
from ..targets import Target, host_target
from ..wheelhouse import Wheel
from ..zigcc import zig_version
from . import BuildJob, Output, link_wheels, parity

MODES = ("onefile", "standalone")
#: How a onefile payload is stored: as it is (the default: bench/nuitka_compress.py) or
#: as one zstandard frame (smaller download, every start inflates it)
COMPRESS = ("none", "zstd")
# the musl loader (which is its libc) under the names ldd gives it: never packed
MUSL_LIBC = ("ld-musl-*.so.1", "libc.musl-*.so.1", "ldd")


def host_python() -> str:
    return f"{sys.version_info[0]}.{sys.version_info[1]}"


def uses_toolchain(target: Target) -> bool:
    """Whether ``target``'s binaries are built with the hermetic toolchain here."""
    from .. import toolchain

    return target.is_host() and toolchain.has_toolchain(target)


def trace_python(target: Target, cache: Cache) -> Path:
    """The interpreter the recipe's checks are traced under: the one the binary embeds
    (the toolchain's CPython, through its Nuitka venv, which has pip), so the trace never
    records a module the binary's standard library does not have (the toolchain builds
    no _sqlite3: awscli then runs without its history, as on a Python without sqlite);
    elsewhere the Python running buildkit, which Nuitka compiles for."""
    if uses_toolchain(target):
        from ..toolchain import store, venv

        return venv.nuitka_python(store.ensure(target, cache), cache)
    return Path(sys.executable)


class NuitkaBackend:
    name = "nuitka"
    options: Mapping[str, tuple[str, ...]] = {
        "mode": MODES,
        "exclude": MODULES,  # modules never followed (--nofollow-import-to)
        "include_packages": MODULES,  # packages packed whole (--include-package)
        "include_modules": MODULES,  # modules packed though no import names them
        "include_data": MODULES,  # packages whose data files are packed
        "include_dirs": PATHS,  # package folders packed as they are (a plugin folder)
        "trace": TRACE_MODES,  # learn the three above from the recipe's checks
        "compress": COMPRESS,  # the onefile payload stored as it is, or zstandard
    }

    def suffix(self, options: Mapping[str, str]) -> str:
        return ".tar.gz" if options.get("mode") == "standalone" else ""

    def refusal(self, target: Target, python: str) -> str | None:
        if not target.is_host():
            from ..hosts import all_hosts

            here = getattr(host_target(), "name", "this host")
            builders = [
                h.name for h in all_hosts().values() if h.builder and h.target == target.name
            ]
            emulated = (
                f", or here on its emulated builder: --builder {builders[0]}" if builders else ""
            )
            return (
                f"nuitka cannot cross-compile: build {target.name} nuitka binaries on "
                f"{target.native_builder}, not on {here}{emulated}"
            )
        if uses_toolchain(target):
            from .. import toolchain

            have = toolchain.spec_for(target).python
            if python != have:
                return (
                    f"the {target.name} toolchain builds CPython {have}, and the recipe asks "
                    f"for {python}: set the recipe's python to {have}"
                )
            return None
        if python != host_python():
            return (
                f"nuitka builds with the Python that runs buildkit ({host_python()}), and "
                f"{target.name} asks for {python}: run buildkit from a Python {python} "
                "environment, or set the target's python to " + host_python()
            )
        return None

    def tool_versions(self, target: Target) -> dict[str, str]:
        if uses_toolchain(target):
            from .. import toolchain

            # every source the interpreter in the binary is compiled from, for the
            # manifest, the SBOM and the provenance
            spec = toolchain.spec_for(target)
            pinned = {
                f"toolchain/{p.source.name}": f"{p.version} sha256:{p.source.sha256}"
                for p in spec.pinned
            }
            # build programs (readelf, strip, patchelf): used on the files, not in them
            pinned.update(
                {
                    f"toolchain-program/{p.source.name}": f"{p.version} sha256:{p.source.sha256}"
                    for p in spec.programs
                }
            )
            return {
                "nuitka": tools.tool_version("nuitka"),
                "zig": zig_version(),
                **pinned,
            }
        return {"nuitka": tools.tool_version("nuitka"), "gcc": _gcc_version()}

    def settings(
        self, target: Target, options: Mapping[str, str], policy: Hardening | None
    ) -> dict[str, str]:
        compress = options.get("compress", "none")
        if compress != "none" and options.get("mode") == "standalone":
            raise InputError(
                f"[formats].nuitka.compress = {compress!r} applies to onefile binaries",
                hint="a standalone folder ships as .tar.gz already; drop compress, or "
                'set mode = "onefile"',
            )
        flags = hardening.flags_for(policy, target.arch, target.os)
        if uses_toolchain(target):
            from .. import toolchain

            spec = toolchain.spec_for(target)
            interpreter = f"CPython {spec.cpython.version} (buildkit toolchain, zig -target "
            interpreter += f"{spec.zig_target})"
            pinned = {"toolchain": spec.digest(zig_version())[:16]}
        else:
            interpreter, pinned = f"CPython {platform.python_version()}", {}
        return {
            "mode": options.get("mode", "onefile"),
            "compress": compress,
            "interpreter": interpreter,
            **pinned,
            "libpython": "static" if pinned or static_libpython() else "auto",
            "exclude": options.get("exclude", ""),
            "include_packages": options.get("include_packages", ""),
            "include_modules": options.get("include_modules", ""),
            "include_data": options.get("include_data", ""),
            "include_dirs": options.get("include_dirs", ""),
            "trace": options.get("trace", "off"),
            # every module, package-data file and .dist-info of every distribution of the
            # lock is packed (parity with the pex); only the recipe's own code and the
            # modules whose functions the checks ran (traced) or what its imports reach
            # (followed) is compiled
            "contents": "lock",
            "compile": "own+followed" if options.get("trace", "off") == "off" else "own+traced",
            "run_modules": options.get("run_modules", ""),
            "paths": options.get("paths", ""),  # folders under site, found by the trace
            "cflags": " ".join(flags.cflags),
            "ldflags": " ".join(flags.ldflags),
            # an empty seccomp slot in the bootstrap, armed after the checks (onefile_seccomp.c)
            **({"seccomp": "slot"} if _seccomp_slot(target, options, policy) else {}),
        }

    def build(self, job: BuildJob, work: Path) -> Output:
        with contextlib.ExitStack() as cleanup:
            return self._build(job, work, cleanup)

    def _build(self, job: BuildJob, work: Path, cleanup: contextlib.ExitStack) -> Output:
        python, compiler = Path(sys.executable), dict[str, str]()
        if "toolchain" in job.settings:
            python, compiler = _toolchain(job, work, cleanup)
        site = install_site(
            job.wheels, job.lockfile, work, what=f"nuitka ({job.target.name})", python=python
        )
        packed = pysite.read_site(site)
        contents = (pysite.read_sources(job.app_dir), packed)
        module, _, attrs = job.entry.partition(":")
        head, _, rest = attrs.partition(".")
        call = f"_entry.{rest}" if rest else "_entry"
        bytecode = work / "bytecode.txt"
        bytecode.write_text(
            "".join(f"{m}\n" for m in bytecode_modules(job, packed, site)), encoding="utf-8"
        )
        options = _options(job, contents, site)
        searched = _search_path(job, site)
        options += [f"--nofollow-import-to={name}" for name in foreign_modules(python, searched)]
        search_path = os.pathsep.join(str(p) for p in searched)
        data = work / "data.txt"
        data.write_text(
            "".join(
                f"{line}\n" for line in skipped_data(contents, _listed(job.settings, "exclude"))
            ),
            encoding="utf-8",
        )
        env = {
            "PYTHONPATH": search_path,
            "CFLAGS": job.settings["cflags"],
            "LDFLAGS": job.settings["ldflags"],
            "NUITKA_CACHE_DIR": str(job.cache.tool_dir("nuitka")),
            "CCACHE_DIR": str(job.cache.tool_dir("ccache")),
            "CCACHE_NOHASHDIR": "1",
            "BUILDKIT_NUITKA_BYTECODE": str(bytecode),
            "BUILDKIT_NUITKA_DATA": str(data),
            # where the binary's modules may come from, besides the standard library
            # (its own variable: Nuitka adds its output folder to PYTHONPATH)
            "BUILDKIT_NUITKA_ROOTS": search_path,
            "BUILDKIT_SECCOMP_SLOT": "1" if job.settings.get("seccomp") == "slot" else "0",
        }
        main = f"import sys\nfrom {module} import {head} as _entry\nsys.exit({call}())\n"
        out = _nuitka(job, python, options=options, main=main, work=work, env=env | compiler)
        shipped = work / "shipped"
        shipped.mkdir()
        payload = Path(shutil.move(out / "main.dist", shipped / "main.dist"))
        onefile = job.settings["mode"] == "onefile"
        binary = Path(shutil.move(out / job.name, shipped / job.name)) if onefile else None
        # the proof binary: the same command on the same inputs in the same folder, with
        # another main module, so Nuitka makes the same decisions and C files for every
        # other module (its Python phase is faster the second time, from its module
        # cache; it cleans its build folder's objects, and the build's own ccache, where
        # the host has one, hands the unchanged ones back: see _toolchain)
        # (its payload stored as it is: the proof is of the contents, not their storage)
        proof_main = parity.main_source(job.entry)
        stored = "--onefile-no-compression"
        _nuitka(
            job,
            python,
            options=options if stored in options or not onefile else [*options, stored],
            main=proof_main,
            work=work,
            env=env | compiler,
            what="nuitka build of the parity proof",
        )
        proof = _prove(job, python, packed=contents, site=site, out=out, work=work / "parity")
        if binary is not None:
            return Output(artifact=binary, payload=payload, parity=proof)
        archive = work / job.name
        reproducible_tar(payload, archive, job.name.removesuffix(".tar.gz"))
        return Output(artifact=archive, payload=payload, parity=proof)


def _search_path(job: BuildJob, site: Path) -> list[Path]:
    return [job.app_dir, site] + [site / p for p in _listed(job.settings, "paths")]


def _options(job: BuildJob, packed: Sequence[pysite.Site], site: Path) -> list[str]:
    """Every Nuitka option but the output folder and the main module."""
    mode = job.settings["mode"]
    cmd = [
        f"--mode={mode}", f"--output-filename={job.name.removesuffix('.tar.gz')}",
        f"--include-data-files={job.app_dir / MEMBER}={MEMBER}",
        "--python-flag=no_site", "--python-flag=isolated",
        "--reproducible=yes", "--lto=no", "--no-progressbar",
        f"--user-plugin={Path(__file__).with_name('nuitka_strip.py')}",
        f"--user-plugin={Path(__file__).with_name('nuitka_compile.py')}",
        f"--user-plugin={Path(__file__).with_name('nuitka_data.py')}",
        f"--user-plugin={Path(__file__).with_name('nuitka_origin.py')}",
        f"--static-libpython={'yes' if job.settings['libpython'] == 'static' else 'auto'}",
    ]  # fmt: skip
    if job.target.libc == "musl":
        # Nuitka's ignore list knows glibc's names only: under musl, ldd resolves
        # libc to the loader itself (and names it after argv[0], "ldd"), so without
        # these the dist folder would carry the build root's libc twice
        cmd += [f"--noinclude-dlls={name}" for name in MUSL_LIBC]
    if job.settings["exclude"]:
        cmd.append(f"--nofollow-import-to={job.settings['exclude']}")
    cmd += parity_options(packed, _listed(job.settings, "exclude"))
    for flag, key in (
        ("--include-package", "include_packages"),
        ("--include-module", "include_modules"),
        ("--include-package-data", "include_data"),
    ):
        cmd += [f"{flag}={name}" for name in _listed(job.settings, key)]
    searched = _search_path(job, site)
    for folder in _listed(job.settings, "include_dirs"):
        found = next((r / folder for r in searched if (r / folder).is_dir()), None)
        if found is None:
            raise InputError(
                f"[formats].nuitka.include_dirs: {folder} is not a folder of the recipe's "
                "sources or of an installed wheel",
                hint="name it relative to where its package is, e.g. glances/plugins",
            )
        cmd.append(f"--include-raw-dir={found}={folder}")
    if mode == "onefile":
        cmd += [
            f"--onefile-tempdir-spec={{CACHE_DIR}}/buildkit/run/{job.name}-{job.info_digest[:20]}",
            "--onefile-cache-mode=cached",
            # refuses an extraction folder others could write (onefile_guard.c)
            f"--user-plugin={Path(__file__).with_name('nuitka_guard.py')}",
        ]
        if job.settings.get("compress", "none") == "none":
            cmd.append("--onefile-no-compression")  # read in place by inspect and the audit
    return cmd


def _nuitka(
    job: BuildJob,
    python: Path,
    *,
    options: Sequence[str],
    main: str,
    work: Path,
    env: Mapping[str, str],
    what: str = "nuitka build",
) -> Path:
    """Nuitka run in ``work`` on ``work/main.py``; its output folder."""
    entry = work / "main.py"
    entry.write_text(main, encoding="utf-8")
    out = work / "out"
    try:
        tools.run(
            [python, "-m", "nuitka", f"--output-dir={out}", *options, entry],
            what=f"{what} for {job.target.name}",
            cwd=work,
            timeout=3600,
            heartbeat=_heartbeat(job.name, out / "main.build"),
            env={**env, "CCACHE_BASEDIR": str(work)},
        )
    except ToolError as exc:
        raise _explained(exc, job.settings) from exc
    return out


_NOT_FOUND = re.compile(r"failed to locate (?:module|package) '([^']+)'")


def _explained(exc: ToolError, settings: Mapping[str, str]) -> ToolError:
    """Nuitka's failure, saying which module it could not find and who asked for it: the
    trace of the recipe's checks, or the recipe itself."""
    found = _NOT_FOUND.search(exc.message)
    if found is None:
        return exc
    name = found.group(1)
    if settings.get("trace", "off") != "off" and name in _listed(settings, "include_modules"):
        return ToolError(
            f"{exc.message}\nNuitka could not find module {name!r}, which the trace of the "
            "recipe's checks recorded as imported by the program",
            hint="a module the checks hand the program at run time (a fixture file) is not "
            "part of it; if the program imports it from its own folders, list it in "
            "[formats].nuitka.include_dirs, else name it in exclude",
        )
    return ToolError(
        f"{exc.message}\nNuitka could not find module {name!r}, which the recipe's "
        "[formats].nuitka options name",
        hint="name a module of the recipe's sources or of a locked wheel",
    )


def _prove(
    job: BuildJob,
    python: Path,
    *,
    packed: Sequence[pysite.Site],
    site: Path,
    out: Path,
    work: Path,
) -> parity.Proof:
    """Run the probe under the build's interpreter with the lock installed (the pex's
    contents) and as the proof binary; compare (CheckFailed on a miss)."""
    work.mkdir()
    items = work / "items.txt"
    items.write_text(
        "".join(f"{line}\n" for line in parity.listing(packed, _listed(job.settings, "exclude"))),
        encoding="utf-8",
    )
    reference = work / "reference.py"
    reference.write_text(parity.main_source(job.entry, _search_path(job, site)), encoding="utf-8")
    want = parity.run_probe(
        [python, "-I", "-S", reference], items, work / "pex", what="the parity probe (reference)"
    )
    filename = job.name.removesuffix(".tar.gz")
    onefile = job.settings["mode"] == "onefile"
    binary = out / filename if onefile else out / "main.dist" / filename
    got = parity.run_probe([binary], items, work / "binary", what="the parity proof binary")
    # a onefile proof reads its files where it extracted them: under its private home
    inside = work / "binary" if onefile else out / "main.dist"
    roots = [p.root for p in packed]
    return parity.compare(want, got, roots=roots, inside=inside, name=job.name)


# the folders the interpreter running Nuitka imports from, but its standard library's
_OWN_PATH = """import sys, sysconfig
paths = sysconfig.get_paths()
std = {paths["stdlib"], paths["platstdlib"]}
std |= {f"{s}/lib-dynload" for s in std}
print("\\n".join(p for p in sys.path[1:] if p and p not in std and not p.endswith(".zip")))
"""


def foreign_modules(python: Path, program: Sequence[Path]) -> list[str]:
    """Top-level modules the interpreter running Nuitka finds in folders of its own (its
    site-packages: Nuitka and the rest of the toolkit, pygments and rich among them)
    that the program's search path does not hold. Nuitka follows imports through its
    own ``sys.path``, so an optional import of the program (docutils tries pygments)
    would pack the toolkit's copy: code no hash of the recipe's lock checked, absent
    from the pex, the SBOM and the build info. Named to Nuitka as never followed, the
    binary fails that import as the pex does."""
    proc = tools.run(
        [python, "-c", _OWN_PATH], what="listing the folders the Nuitka interpreter imports from"
    )
    theirs = _top_names(Path(line) for line in proc.stdout.splitlines() if line)
    return sorted(theirs - _top_names(program) - set(sys.stdlib_module_names))


def _top_names(folders: Iterable[Path]) -> set[str]:
    """Names importable at the top level of ``folders``: packages (namespace ones too),
    modules, extension modules."""
    names = set()
    for folder in folders:
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            if entry.is_dir():
                name = entry.name
            elif entry.suffix in (".py", ".so") and entry.is_file():
                name = entry.name.split(".")[0]
            else:
                continue
            if name.isidentifier() and not name.startswith("__"):
                names.add(name)
    return names


def _excluded(name: str, excluded: Sequence[str]) -> bool:
    return any(name == e or name.startswith(f"{e}.") for e in excluded)


def parity_options(packed: Sequence[pysite.Site], excluded: Sequence[str]) -> list[str]:
    """Nuitka options packing everything the pex holds (the recipe's sources and the
    lock's distributions): each top-level package whole with its data files, each
    top-level module, and each distribution's metadata (what ``importlib.metadata``
    reads: versions, entry points, files). What the recipe excludes stays out (Nuitka
    refuses to follow it)."""
    options = [
        f"--include-distribution-metadata={d.name}"
        for site in packed
        for d in site.distributions
        if d.metadata
    ]
    packages = dict.fromkeys(p for site in packed for p in site.packages())
    for package in packages:
        if not _excluded(package, excluded):
            options += [f"--include-package={package}", f"--include-package-data={package}"]
    modules = dict.fromkeys(m for site in packed for m in site.top_modules())
    options += [f"--include-module={m}" for m in modules if not _excluded(m, excluded)]
    return options


def skipped_data(packed: Sequence[pysite.Site], excluded: Sequence[str]) -> list[str]:
    """``SOURCE<TAB>DEST`` of each package-data file Nuitka's own scan leaves out (and its
    ``--include-data-files`` too, for ``py.typed``): the pex has them, so buildkit's
    plugin (``nuitka_data.py``) packs them by name."""
    found = []
    for site in packed:
        tops = set(site.packages())
        found += [
            f"{site.root / rel}\t{rel}"
            for rel in site.data()
            if _skipped_by_nuitka(rel)
            and rel.split("/")[0] in tops
            and not _excluded(rel.rpartition("/")[0].replace("/", "."), excluded)
        ]
    return found


#: What Nuitka's package-data scan ignores (4.3.5, ``freezer/IncludedDataFiles.py``):
#: files with a code suffix (also ``.py`` files no import can name, ``.pyi`` stubs,
#: ``.bin`` data) and ``py.typed`` markers.
_NUITKA_SKIPS = (".py", ".pyw", ".pyc", ".pyo", ".pyi", ".pyx", ".dll", ".exe", ".bin")


def _skipped_by_nuitka(rel: str) -> bool:
    name = rel.rpartition("/")[2]
    return name in ("py.typed", ".DS_Store") or name.endswith(_NUITKA_SKIPS)


def own_modules(app: Path) -> set[str]:
    """The recipe's own modules (its sources, merged into ``app``)."""
    found: set[str] = set()
    for path in app.rglob("*.py"):
        name = pysite.module_name(path.relative_to(app).as_posix())
        if name:
            found.update(".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 2))
    return found


def bytecode_modules(job: BuildJob, packed: pysite.Site, site: Path) -> list[str]:
    """The lock's modules Nuitka ships as bytecode: all but those compiled to C, which
    are the modules whose functions the trace saw run (``compile = own+traced``: a module
    only imported ran its body once, defining classes and constants, and gains nothing
    from C) or, without a trace, those the recipe's own code reaches by the imports it
    shows (``own+followed``). The recipe's own code is never in the lock, so it is
    always compiled."""
    if job.settings.get("compile") == "own+traced":
        compiled = set(_listed(job.settings, "run_modules"))
    else:
        roots = [job.app_dir, site] + [site / p for p in _listed(job.settings, "paths")]
        compiled = imports.closure(
            [job.entry.partition(":")[0], *own_modules(job.app_dir)], imports.Finder(roots)
        )
    return sorted(packed.modules() - compiled - own_modules(job.app_dir))


def _seccomp_slot(target: Target, options: Mapping[str, str], policy: Hardening | None) -> bool:
    return (
        policy is not None
        and policy.seccomp == "enforce"
        and target.os == "linux"
        and options.get("mode", "onefile") == "onefile"
    )


@cache
def static_libpython() -> bool:
    """Whether this interpreter's static libpython can be linked into a PIE program.

    Nuitka's own choice depends on the environment (it recognises pyenv by PYENV_ROOT),
    which buildkit does not pass on; so decide here, from the interpreter's build
    configuration: Linux, a libpython.a installed, compiled as position-independent code.
    Elsewhere Nuitka decides ("auto").
    """
    if sys.platform != "linux":
        return False
    libdir, library = sysconfig.get_config_var("LIBPL"), sysconfig.get_config_var("LIBRARY")
    if not libdir or not library or not (Path(libdir) / library).is_file():
        return False
    return "-fPIC" in (sysconfig.get_config_var("PY_CORE_CFLAGS") or "").split()


@cache
def _gcc_version() -> str:
    cc = shutil.which("gcc")
    if cc is None:
        return "missing"
    proc = tools.run([cc, "-dumpfullversion"], what="gcc version")
    return proc.stdout.strip()


def _listed(settings: Mapping[str, str], key: str) -> list[str]:
    return [item for item in settings.get(key, "").split(",") if item]


def _toolchain(
    job: BuildJob, work: Path, cleanup: contextlib.ExitStack
) -> tuple[Path, dict[str, str]]:
    """The toolchain's Nuitka interpreter, and the environment that makes Nuitka compile
    with the toolchain's zig for the target's C library baseline."""
    from ..toolchain import store, venv
    from ..toolchain.build import SOURCE_ROOT, dynamic_flag, note_header, rt_link_args, zig

    built = store.ensure(job.target, job.cache)
    if built.key.rsplit("-", 1)[-1] != job.settings["toolchain"]:
        raise InputError(
            f"the {job.target.name} toolchain in the cache ({built.key}) is not the one the "
            f"build info names ({job.settings['toolchain']})",
            hint="the toolchain lock changed during the build; build again",
        )
    python = venv.nuitka_python(built, job.cache)
    # Nuitka recognises zig by its file name and calls "<it> cc ARGS": the wrapper adds
    # the target (C library and baseline) to every compile and link.
    # SCons splits CC at spaces: the wrapper lives where the path has none (repro's
    # later builds run under "deeper/build tree"), removed when the build ends
    here = work / "zig-target"
    if " " in str(here):
        here = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="bk-zig-")))
    here.mkdir(exist_ok=True)
    wrapper = here / "zig"
    # no build path in the objects: the work folder and the toolchain's own (given here,
    # quoted by us: SCons splits CFLAGS at spaces, and repro's paths have some)
    maps = " ".join(
        shlex.quote(f"-ffile-prefix-map={path}={to}")
        for path, to in ((work, "/build"), (built.folder, SOURCE_ROOT))
    )
    # -g0: zig's cc emits DWARF unless told not to; the program is stripped when linked,
    # so it was compile time for nothing
    target = f"-target {built.spec.zig_target}{dynamic_flag(built.spec.zig_target)} -g0 {maps}"
    # links (not compiles) also take the toolchain's compiler-rt where it has one: zig's
    # own would replace libc's stack guard with a constant on aarch64 (toolchain/build.py)
    rt = " ".join(shlex.quote(a) for a in rt_link_args(built.folder))
    # compiles go through ccache where the host has it, into a cache of this build's own
    # (in its work folder, gone with it): the parity proof's Nuitka run compiles the same
    # C files in the same folder, and gets them from there. Nothing is shared with other
    # builds (a cache another build could write would be one more input to trust), and
    # the command zig runs is the same (no base_dir rewriting: the objects are the same).
    ccache = shutil.which("ccache")
    cached = ""
    if ccache is not None:
        for sub in ("cc", "c++"):
            direct = here / f"zig-{sub}"
            direct.write_text(f'#!/bin/sh\nexec "{zig()}" {sub} {target} "$@"\n', encoding="utf-8")
            direct.chmod(0o755)
        (here / "ccache.conf").write_text("", encoding="utf-8")  # not the host's config
        settings = f"CCACHE_DIR={shlex.quote(str(work / 'ccache'))} "
        settings += f"CCACHE_CONFIGPATH={shlex.quote(str(here / 'ccache.conf'))}"
        cached = (
            f'[ -n "$link" ] || exec env -u CCACHE_BASEDIR {settings} '
            f'"{ccache}" "{here}/zig-$sub" "$@"\n'
        )
    with_rt = f'[ -z "$link" ] || set -- "$@" {rt}\n' if rt else ""
    wrapper.write_text(
        "#!/bin/sh\n"
        'case "$1" in\n'
        "cc|c++) sub=$1; shift\n"
        'link=1; for a; do case "$a" in -c|-S|-E) link=;; esac; done\n'
        f"{cached}{with_rt}"
        f'exec "{zig()}" "$sub" {target} "$@";;\n'
        "esac\n"
        f'exec "{zig()}" "$@"\n',
        encoding="utf-8",
    )
    wrapper.chmod(0o755)
    # the policy's flags as a buildkit ELF note in every object Nuitka compiles (its own
    # COMDAT group: the toolchain's objects linked in keep theirs), so the audit can tell
    # FORTIFY's level and stack clash protection, which leave no other mark
    note = here / "buildkit-note.h"
    cflags = job.settings["cflags"]
    note.write_text(
        note_header(cflags.split(), who="nuitka", group="buildkit.note.app"), encoding="utf-8"
    )
    # zig keeps its objects (and the target's libc pieces it builds) in the cache folder
    # given, like every other tool's: not in $HOME/.cache/zig, which nothing bounds
    zig_cache = str(job.cache.tool_dir("zig"))
    env = {
        "CC": str(wrapper),
        "CFLAGS": f"{cflags} -include {note}".strip(),
        "ZIG_GLOBAL_CACHE_DIR": zig_cache,
        "ZIG_LOCAL_CACHE_DIR": zig_cache,
    }
    if built.programs is not None:
        # readelf and patchelf (Nuitka), strip (nuitka_strip.py): the toolchain's own,
        # native executables (in an emulated builder the root's would run emulated)
        env["PATH"] = os.pathsep.join([str(built.programs), os.environ.get("PATH", "")])
    return python, env


def install_site(
    wheels: Sequence[Wheel],
    requirements: Path,
    work: Path,
    *,
    what: str,
    python: Path | None = None,
) -> Path:
    """The locked wheels installed (hash-checked by pip again) into ``work/site``, by
    ``python`` (default: the one running buildkit), whose tags the wheels must match."""
    site = work / "site"
    site.mkdir()
    if wheels:
        install: list[str | Path] = [
            python or sys.executable, "-m", "pip", "install", "--no-deps", "--no-index",
            "--require-hashes", "--only-binary=:all:", "--no-compile",
            "--target", site, "--find-links", link_wheels(wheels, work / "wheels"),
            "--requirement", requirements,
        ]  # fmt: skip
        tools.run(install, what=f"installing the locked wheels for {what}")
    return site


def _heartbeat(name: str, build: Path) -> Callable[[float, str], str]:
    """The line a long Nuitka compile logs every half minute: elapsed time, the C files
    compiled so far out of those generated, and the phase Nuitka last reported."""

    def beat(elapsed: float, last: str) -> str:
        sources = objects = 0
        if build.is_dir():
            for path in build.rglob("*"):
                sources += path.suffix == ".c"
                objects += path.suffix == ".o"
        files = f"; C files compiled {objects}/{sources}" if sources else ""
        minutes, seconds = divmod(int(elapsed), 60)
        phase = last[:120] if last else "starting"
        return f"nuitka {name}: {minutes}m{seconds:02d}s{files}; last: {phase}"

    return beat


def reproducible_tar(folder: Path, dest: Path, root: str) -> None:
    """A .tar.gz of ``folder`` under ``root/`` with sorted names, fixed times and owners."""
    epoch = int(tools.SOURCE_DATE_EPOCH)
    with dest.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:  # fmt: skip
        for path in [folder, *sorted(folder.rglob("*"))]:
            rel = path.relative_to(folder)
            info = tar.gettarinfo(str(path), arcname=str(Path(root) / rel))
            info.mtime = epoch
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            executable = path.is_dir() or os.access(path, os.X_OK)
            info.mode = 0o755 if executable else 0o644
            if info.isfile():
                with path.open("rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
