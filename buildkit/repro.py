"""`buildkit repro`: build a recipe twice (or N times), the later builds under varied
conditions, and compare every release file byte for byte.

Each build is a separate ``buildkit build`` process with its own copy of the recipe and
its lockfiles, its own output folder and its own cache: it never sees another build's
outputs. Only the downloaded wheels are shared (content-addressed and verified by hash on
every use); the first build may also use the tool caches (ccache, Nuitka's) of the cache
folder given, the later ones start with empty ones, so they compile everything themselves.

What the later builds vary (each recorded in the result): the recipe's path and the
output path, the working directory, the time zone, the umask, the locale, HOME, unrelated
environment variables (including compiler flags, SOURCE_DATE_EPOCH and PYTHONHASHSEED, all
of which the builds must ignore or scrub), the order files are created on disk, the number
of CPUs (``taskset``), the host name (a UTS namespace with ``unshare -u``, skipped with
a note where not permitted), the Python that runs buildkit (``--python``, or another
CPython 3.11+ found here, in a kept venv with the pinned toolkit), and the host's C
compilers: ``gcc``, ``cc``, ``clang`` and the rest bound to ``false`` in a mount namespace
(root only; not for a recipe with native packages, which the host's compiler builds). The
hermetic toolchain (keyed by its lock's digest) is shared like the wheels: it is an input,
not an output of the build. Differing files are compared with diffoscope, whose text
report is saved beside the result.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import tools
from .cache import Cache
from .errors import CheckFailed, InputError
from .fsutil import atomic_write_text, output_errors, sha256_file
from .lock import lock_dir
from .recipe import Recipe
from .request import BuildRequest
from .toolchain.store import toolchain_root
from .toolchain.venv import kept_toolkit_venv

log = logging.getLogger(__name__)

RESULT = "repro.json"


@dataclass(frozen=True, kw_only=True)
class Condition:
    name: str
    values: tuple[str, ...]  # one per run
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class FileResult:
    name: str
    digests: tuple[str | None, ...]  # per run; None: missing from that run
    report: Path | None = None  # diffoscope's text report, when the file differs

    @property
    def same(self) -> bool:
        return len(set(self.digests)) == 1 and self.digests[0] is not None


@dataclass(frozen=True, kw_only=True)
class ReproResult:
    recipe: str
    out: Path
    conditions: tuple[Condition, ...]
    files: tuple[FileResult, ...]
    skipped: tuple[str, ...] = field(default_factory=tuple)

    @property
    def identical(self) -> bool:
        return bool(self.files) and all(f.same for f in self.files)

    @property
    def runs(self) -> int:
        return len(self.conditions[0].values) if self.conditions else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe,
            "identical": self.identical,
            "runs": self.runs,
            "conditions": [
                {"name": c.name, "values": list(c.values), "note": c.note} for c in self.conditions
            ],
            "files": [
                {
                    "name": f.name,
                    "same": f.same,
                    "sha256": list(f.digests),
                    "diffoscope": str(f.report) if f.report else None,
                }
                for f in self.files
            ],
            "skipped": list(self.skipped),
        }


@dataclass(frozen=True, kw_only=True)
class _Run:
    index: int
    project: Path  # the copy of the project (recipe and lockfiles)
    recipe: Path
    out: Path
    cache: Path
    cwd: Path
    env: dict[str, str]
    umask: int
    prefix: tuple[str, ...]  # taskset / unshare wrappers
    reverse_order: bool
    python: Path  # the interpreter that runs `buildkit build`


def _uts_namespace_works() -> bool:
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    proc = tools.run([unshare, "--uts", "true"], what="unshare -u probe", check=False)
    return proc.returncode == 0


#: The host's C compilers a hermetic build must not need (bound to ``false`` in later runs).
COMPILERS = ("gcc", "cc", "c++", "g++", "clang", "clang++", "x86_64-linux-gnu-gcc",
             "aarch64-linux-gnu-gcc", "c89", "c99")  # fmt: skip


def _hide_compilers() -> list[str]:
    """An ``unshare -m`` prefix that binds every host C compiler found to ``false``
    (empty where mount namespaces are not permitted: not root)."""
    false = shutil.which("false")
    found = sorted({str(Path(p).resolve()) for c in COMPILERS if (p := shutil.which(c))})
    if os.geteuid() != 0 or false is None or shutil.which("unshare") is None or not found:
        return []
    binds = " && ".join(f"mount --bind {false} '{p}'" for p in found)
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            f'{binds} && exec "$@"', "sh"]  # fmt: skip


def _version(python: str | Path) -> str | None:
    """``"3.12.1"`` for a CPython 3.11+ that runs, else None."""
    if not Path(python).is_file() or not os.access(python, os.X_OK):
        return None
    probe = "import sys, platform; print(platform.python_implementation(), *sys.version_info[:3])"
    proc = tools.run(
        [python, "-I", "-S", "-c", probe], what=f"{python} --version", check=False, timeout=60
    )
    words = proc.stdout.split()
    if proc.returncode != 0 or len(words) != 4 or words[0] != "CPython":
        return None
    if (int(words[1]), int(words[2])) < (3, 11):
        return None
    return ".".join(words[1:])


def other_python(given: Path | None) -> tuple[Path, str] | None:
    """An interpreter of another Python version than the one running buildkit, for the
    later builds: ``given`` (``--python``), else the first CPython 3.11+ of another minor
    version on PATH (python3.11 … python3.14) or among pyenv's versions."""
    mine = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if given is not None:
        version = _version(given)
        if version is None:
            raise InputError(
                f"--python {given}: not a CPython 3.11 or newer that runs here",
                hint="give the path of a python3.X executable, X ≥ 11",
            )
        return given, version
    names = [f"python3.{minor}" for minor in range(11, 15)]
    candidates = [Path(p) for n in names if (p := shutil.which(n))]
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    if pyenv.is_dir():
        candidates += sorted(pyenv.glob("3.1[1-9]*/bin/python3.1[1-9]"))
    for candidate in candidates:
        version = _version(candidate)
        if version is not None and version.rsplit(".", 1)[0] != mine:
            return candidate, version
    return None


def _plan_runs(
    work: Path,
    runs: int,
    cache: Cache,
    *,
    hide_compilers: str | None,
    python: tuple[Path, str] | None = None,
    same_python: str = "",
) -> tuple[list[_Run], list[Condition]]:
    """The builds' conditions. ``hide_compilers``: None to hide the host's C compilers
    from the later builds, else why they stay. ``python``: the interpreter of the later
    builds (a toolkit venv of another Python version) and its version."""
    cpus = sorted(os.sched_getaffinity(0))
    uts = _uts_namespace_works()
    hide = _hide_compilers() if hide_compilers is None else []
    why_not = hide_compilers or "not root (no mount namespace), or no compiler here"
    # (and what reaches the registries: proxies, certificates, a mirror, which the first
    # build uses; the later ones are offline and get unreachable index URLs)
    kept = ("PATH", "CI", "NO_COLOR", "TMPDIR", *tools.NETWORK)
    base = {k: v for k, v in os.environ.items() if k in kept}
    plans: list[_Run] = []
    for i in range(runs):
        varied = i > 0
        root = work / (f"run-{i + 1}" if not varied else f"run-{i + 1}/deeper/build tree")
        project = root / "project"
        env = {
            **base,
            "HOME": str(root / "home"),
            "TZ": "REPROA-14" if not varied else "REPROB+12",
            "LC_ALL": "C.UTF-8" if not varied else "POSIX",
            "LANG": "C.UTF-8" if not varied else "POSIX",
            "PYTHONHASHSEED": "0" if not varied else str(1000 + i),
        }
        if varied:
            env.update(
                {
                    "BUILDKIT_REPRO_NOISE": f"run {i + 1}",
                    "CFLAGS": "-O0 -g3",
                    "LDFLAGS": "-Wl,--build-id=none",
                    "SOURCE_DATE_EPOCH": "1700000000",
                    "PIP_INDEX_URL": "http://127.0.0.1:9/simple",
                    "UV_INDEX_URL": "http://127.0.0.1:9/simple",
                }
            )
        prefix: list[str] = []
        if varied and len(cpus) > 1:
            prefix += ["taskset", "-c", str(cpus[0])]
        if varied and uts:
            prefix += ["unshare", "--uts", "sh", "-c", f'hostname repro-{i + 1} && exec "$@"', "sh"]
        if varied and hide:
            prefix += hide
        plans.append(
            _Run(
                index=i + 1,
                project=project,
                recipe=project / "recipe",
                out=(work / f"out-{i + 1}") if not varied else (root / "out" / "release"),
                cache=root / "cache",
                cwd=project if not varied else root,
                env=env,
                umask=0o022 if not varied else 0o002,
                prefix=tuple(prefix),
                reverse_order=varied,
                python=python[0] if varied and python else Path(sys.executable),
            )
        )
    mine = platform.python_version()
    other = f"{python[1]} (a toolkit venv of it)" if python else mine
    conditions = [
        Condition(name="recipe path", values=tuple(str(r.recipe) for r in plans)),
        Condition(name="output path", values=tuple(str(r.out) for r in plans)),
        Condition(name="working directory", values=tuple(str(r.cwd) for r in plans)),
        Condition(name="TZ", values=tuple(r.env["TZ"] for r in plans)),
        Condition(name="umask", values=tuple(f"{r.umask:04o}" for r in plans)),
        Condition(name="locale (LC_ALL)", values=tuple(r.env["LC_ALL"] for r in plans)),
        Condition(name="HOME", values=tuple(r.env["HOME"] for r in plans)),
        Condition(
            name="environment noise",
            values=tuple(
                " ".join(sorted(k for k in r.env if k not in base and k not in _FIXED)) or "none"
                for r in plans
            ),
            note="CFLAGS, LDFLAGS, SOURCE_DATE_EPOCH, package index URLs and more",
        ),
        Condition(name="PYTHONHASHSEED", values=tuple(r.env["PYTHONHASHSEED"] for r in plans)),
        Condition(
            name="file creation order",
            values=tuple("reversed" if r.reverse_order else "sorted" for r in plans),
        ),
        Condition(
            name="CPUs",
            values=tuple(
                f"1 (taskset -c {cpus[0]})" if "taskset" in r.prefix else str(len(cpus))
                for r in plans
            ),
            note="" if len(cpus) > 1 else "only one CPU available: not varied",
        ),
        Condition(
            name="hostname",
            values=tuple(
                f"repro-{r.index} (unshare -u)" if "unshare" in r.prefix else os.uname().nodename
                for r in plans
            ),
            note="" if uts else "unshare -u not permitted here: not varied",
        ),
        Condition(
            name="host C compilers",
            values=tuple(
                "hidden (bound to false)" if hide and r.index > 1 else "present" for r in plans
            ),
            note="" if hide else f"not hidden: {why_not}",
        ),
        Condition(
            name="Python running buildkit",
            values=tuple(other if r.index > 1 else mine for r in plans),
            note=""
            if python
            else f"not varied: {same_python or 'no CPython 3.11+ of another version here'}",
        ),
        Condition(
            name="tool caches",
            values=tuple(f"shared with {cache.root}" if r.index == 1 else "empty" for r in plans),
            note="downloaded wheels are shared, verified by hash; built outputs never are",
        ),
    ]
    return plans, conditions


_FIXED = ("HOME", "TZ", "LC_ALL", "LANG", "PYTHONHASHSEED")


def _copy_tree(src: Path, dest: Path, *, reverse: bool) -> None:
    """Copy ``src`` into ``dest`` creating entries in sorted or reversed order (which is
    the order a small directory lists them in on most file systems)."""
    dest.mkdir(parents=True, exist_ok=True)
    entries = sorted(src.iterdir(), key=lambda p: p.name, reverse=reverse)
    for entry in entries:
        if entry.name in ("__pycache__", ".git") or entry.is_symlink():
            continue
        if entry.is_dir():
            _copy_tree(entry, dest / entry.name, reverse=reverse)
        elif entry.is_file():
            shutil.copy2(entry, dest / entry.name)


def _check_perturb(root: Path, perturb: str) -> Path:
    """The file ``perturb`` names inside ``root``: relative, no '..', no symbolic link on
    the way, a regular file. repro edits it in its own copy of the recipe only."""
    rel = Path(perturb)
    path = root / rel
    inside = not rel.is_absolute() and ".." not in rel.parts
    links = any((root / Path(*rel.parts[:n])).is_symlink() for n in range(1, len(rel.parts) + 1))
    if not inside or links or not path.resolve().is_relative_to(root.resolve()):
        raise InputError(
            f"--perturb {perturb}: not a file inside the recipe folder {root}",
            hint="give a path relative to the recipe folder, e.g. src/<package>/cli.py; "
            "repro edits its own copy of that file, never one outside the recipe",
        )
    if not path.is_file():
        raise InputError(
            f"--perturb {perturb}: not a file of the recipe folder {root}",
            hint="give a path relative to the recipe folder, e.g. src/<package>/cli.py",
        )
    return path


def _prepare(run: _Run, recipe: Recipe, locks: Path, cache: Cache, perturb: str | None) -> None:
    _copy_tree(recipe.root, run.recipe, reverse=run.reverse_order)
    if locks.is_dir():
        _copy_tree(locks, run.project / "lockfiles" / recipe.name, reverse=run.reverse_order)
    if perturb and run.index > 1:
        target = _check_perturb(run.recipe, perturb)  # the copy's file, never the user's
        with target.open("a", encoding="utf-8") as f:
            f.write(f"\n# changed in build {run.index} by buildkit repro --perturb\n")
    run.cache.mkdir(parents=True)
    mine = Cache(root=run.cache)  # a fresh cache sharing only the verified wheels
    mine.wheels.symlink_to(cache.wheels, target_is_directory=True)
    # and the toolchain (an input keyed by its lock's digest, checked before each use):
    # the build runs without $BUILDKIT_TOOLCHAIN_DIR, so it looks in its own cache's
    # toolchain/, which leads to the one this repro uses
    (mine.root / "toolchain").symlink_to(toolchain_root(cache), target_is_directory=True)
    if run.index == 1:
        mine.tools.symlink_to(cache.tools, target_is_directory=True)
    Path(run.env["HOME"]).mkdir(parents=True, exist_ok=True)
    # this cache's key (no input of the bytes): the shared toolchain's and tools' seals
    # open in every build, whatever its HOME
    run.env.update(cache.key.env())


def _build(run: _Run, targets: Sequence[str], formats: Sequence[str]) -> dict[str, Any]:
    cmd = BuildRequest(
        recipe=run.recipe,
        out=run.out,
        targets=tuple(targets),
        formats=tuple(formats),
        cache_dir=run.cache,
        lockfiles=run.project / "lockfiles",
        offline=run.index > 1,  # the first build fetched every wheel
        json=True,
    ).to_argv(run.python, prefix=run.prefix)
    log.info("build %d of the recipe", run.index, extra={"step": "repro"})
    proc = tools.run(
        cmd,
        what=f"repro build {run.index}",
        cwd=run.cwd,
        exact_env=run.env,
        umask=run.umask,
        timeout=7200,
        hint="the build itself failed; run the same `buildkit build` to see why",
    )
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def _diffoscope(a: Path, b: Path, report: Path) -> Path | None:
    exe = shutil.which("diffoscope")
    if exe is None:
        log.warning(
            "diffoscope is not installed: no report for %s (Debian: diffoscope-minimal)", a.name
        )
        return None
    proc = tools.run(
        [exe, "--no-progress", "--text", report, a, b],
        what=f"diffoscope on {a.name}",
        check=False,
        timeout=1800,
    )
    if proc.returncode not in (0, 1) or not report.is_file():
        log.warning("diffoscope failed on %s: %s", a.name, (proc.stderr or "").strip()[-300:])
        return None
    _zip_after_header(exe, a, b, report)
    return report


def _zip_after_header(exe: str, a: Path, b: Path, report: Path) -> None:
    """A zipapp behind a launcher header (pex's ``--sh-boot``) is not seen as a zip by
    diffoscope, which then shows a hex dump. Compare the archives' members as well."""
    copies = []
    for side, path in (("1", a), ("2", b)):
        with path.open("rb") as f:
            starts_as_zip = f.read(4) == b"PK\x03\x04"
        if starts_as_zip or not zipfile.is_zipfile(path):
            return
        dest = report.parent / f".{report.name}.{side}" / path.name
        dest.parent.mkdir(exist_ok=True)
        with zipfile.ZipFile(path) as src, zipfile.ZipFile(dest, "w") as out:
            for info in src.infolist():
                out.writestr(info, src.read(info))
        copies.append(dest)
    members = report.with_name(report.name + ".members")
    try:
        tools.run(
            [exe, "--no-progress", "--text", members, *copies],
            what=f"diffoscope on the members of {a.name}",
            check=False,
            timeout=1800,
        )
        if members.is_file():
            with report.open("a", encoding="utf-8") as f:
                f.write("\n# the zip archive after the launcher header, member by member\n")
                f.write(members.read_text(encoding="utf-8", errors="replace"))
    finally:
        members.unlink(missing_ok=True)
        for copy in copies:
            shutil.rmtree(copy.parent, ignore_errors=True)


def repro(
    recipe: Recipe,
    *,
    targets: Sequence[str],
    formats: Sequence[str],
    out: Path,
    cache: Cache,
    runs: int = 2,
    lockfiles: Path | None = None,
    perturb: str | None = None,
    python: Path | None = None,
) -> ReproResult:
    if runs < 2:
        raise InputError(f"--runs {runs}: repro needs at least 2 builds")
    if perturb is not None:
        _check_perturb(recipe.root, perturb)
    locks = lock_dir(recipe, lockfiles)
    with output_errors(out):
        out.mkdir(parents=True, exist_ok=True)
        for stale in out.glob("*.diffoscope.txt"):
            stale.unlink()
    for shared in (cache.wheels, cache.tools, toolchain_root(cache)):
        shared.mkdir(parents=True, exist_ok=True)
    work = cache.tmp_dir()
    try:
        # pex writes the interpreter that runs it into each .pex (its sh-boot fast path
        # names that interpreter's venv folder; its __main__.py, the version's shebang):
        # with pex among the formats, every build runs on this Python
        pex = "pex" in (formats or recipe.formats)
        other = None if pex and python is None else other_python(python)
        if other is not None:
            venv = kept_toolkit_venv(
                other[0], cache.tools / "repro-python", str(other[0].resolve()),
                what=f"a toolkit venv of Python {other[1]} (repro's later builds)", cache=cache,
            )  # fmt: skip
            other = (venv, other[1])
        # Native binaries compile with the toolchain's zig, zipapps compile nothing; only
        # the recipe's own C packages are built with the host's compiler.
        keep = (
            f"the recipe's native packages ({', '.join(recipe.native)}) are compiled with "
            "the host's C compiler"
            if recipe.native
            else None
        )
        plans, conditions = _plan_runs(
            work, runs, cache, hide_compilers=keep, python=other,
            same_python="a .pex names the interpreter that ran pex" if pex else "",
        )  # fmt: skip
        skipped: list[str] = []
        for run in plans:
            _prepare(run, recipe, locks, cache, perturb)
            doc = _build(run, targets, formats)
            if run.index == 1:
                skipped = [
                    f"{s['format']} for {s['target']}: {s['reason']}" for s in doc["skipped"]
                ]
        listings = [
            {p.name: sha256_file(p) for p in sorted(run.out.iterdir()) if p.is_file()}
            for run in plans
        ]
        files = []
        for name in sorted(set().union(*listings)):
            digests = tuple(listing.get(name) for listing in listings)
            report = None
            if len(set(digests)) > 1 and None not in digests:
                odd = next(i for i, d in enumerate(digests) if d != digests[0])
                report = _diffoscope(
                    plans[0].out / name, plans[odd].out / name, out / f"{name}.diffoscope.txt"
                )
            files.append(FileResult(name=name, digests=digests, report=report))
        result = ReproResult(
            recipe=recipe.name,
            out=out,
            conditions=tuple(conditions),
            files=tuple(files),
            skipped=tuple(skipped),
        )
        atomic_write_text(out / RESULT, json.dumps(result.to_json(), indent=2) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return result


def check(result: ReproResult) -> None:
    """Raise CheckFailed naming the files that differ."""
    differ = [f for f in result.files if not f.same]
    if not differ:
        return
    names = ", ".join(f.name for f in differ[:8]) + (" …" if len(differ) > 8 else "")
    reports = [str(f.report) for f in differ if f.report]
    raise CheckFailed(
        f"not reproducible: {len(differ)} file(s) differ between builds: {names}",
        hint=("diffoscope reports: " + ", ".join(reports[:4]))
        if reports
        else f"see {result.out / RESULT}",
    )
