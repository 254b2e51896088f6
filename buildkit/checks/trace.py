"""Trace-guided Nuitka builds: what the recipe's checks make the program import and read.

Nuitka follows imports it can see in the code. What a program reaches through import
hooks, ``importlib`` or plugin folders, and the data files it opens, it cannot see: the
binary builds green and fails at its first real command. So, before a Nuitka build with
``trace`` set, the recipe's checks run against the program under the build's own Python
(the locked wheels installed, the recipe's sources), with :mod:`.tracer` recording every
module imported, every file opened and every folder listed. From that record:

* every module imported is included (``--include-module``), and a folder in which an
  import hook found modules under other names (awscli's ``botocore``, vendored in
  ``awscli/botocore``) is searched by Nuitka too;
* every package whose data files were opened has its data packed
  (``--include-package-data``), and every package folder the program listed (a plugin
  folder it looks into) is packed as it is (``--include-raw-dir``), so the listing finds
  what it found here;
* with ``trace = "include-exclude"``, every standard-library module the runs never
  imported, and every submodule of an imported standard-library package they never
  imported, is left out (``--nofollow-import-to``): the smaller payload is the faster
  start, and the checks decide what "never needed" means, so they must be thorough.

The record goes into the build's settings, so the build info and the manifest say what
was traced, and a different trace is a different build.
"""

from __future__ import annotations

import _imp
import json
import logging
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import imports, pysite
from ..errors import CheckFailed
from . import run
from .model import Check

log = logging.getLogger(__name__)

MODES = ("off", "include", "include-exclude")
#: Never left out, whatever a trace says: what every start of a Nuitka program needs.
_KEEP = frozenset({"encodings", "codecs", "io", "abc", "os", "sys", "builtins", "importlib"})


@dataclass(frozen=True, kw_only=True)
class Trace:
    modules: tuple[str, ...]  # imported from a file, under their own names
    ran: tuple[str, ...]  # those of them whose functions ran (worth compiling to C)
    aliases: tuple[tuple[str, str], ...]  # name in sys.modules -> the module's own name
    paths: tuple[str, ...]  # folders under site an import hook found top-level modules in
    data_packages: tuple[str, ...]  # top-level packages whose data files were read
    dirs: tuple[str, ...]  # package folders listed, relative to where their package is
    exclude: tuple[str, ...]  # standard-library modules never imported


def _root_of(name: str, file: str) -> Path | None:
    """The folder from which ``name`` is found at ``file`` (``a.b`` at ``R/a/b.py`` or
    ``R/a/b/__init__.py``: R), or None when the file is not laid out by its name."""
    path = Path(file)
    parts = name.split(".")
    if path.name == "__init__.py":
        path = path.parent
    elif path.suffix == ".py":
        path = path.with_suffix("")
    else:  # an extension module: a.b at R/a/b.cpython-311-x86_64-linux-gnu.so
        path = path.with_name(path.name.split(".")[0])
    if list(path.parts[-len(parts) :]) != parts:
        return None
    return Path(*path.parts[: -len(parts)])


def _tops(path: str, roots: Sequence[Path]) -> list[str]:
    """The top-level package (or module) names a file or folder under ``roots`` may belong
    to, from the deepest root up."""
    resolved = Path(path).resolve()
    found = []
    for root in sorted(roots, key=lambda r: len(r.parts), reverse=True):
        try:
            rel = resolved.relative_to(root)
        except ValueError:
            continue
        if rel.parts and not rel.parts[0].endswith((".dist-info", ".data")):
            found.append(rel.parts[0].removesuffix(".py"))
    return found


def collect(out: Path, app: Path, site: Path, stdlib: frozenset[str]) -> Trace:
    """Merge the tracer's records in ``out``."""
    modules: dict[str, str] = {}
    aliases: dict[str, str] = {}
    opened: set[str] = set()
    listed: set[str] = set()
    ran: set[str] = set()
    std: set[str] = set()  # the traced interpreter's standard library (not buildkit's)
    for record in sorted(out.glob("*.json")):
        doc = json.loads(record.read_text(encoding="utf-8"))
        std.update(doc.get("stdlib", ()))
        modules.update(doc["modules"])
        aliases.update(doc["aliases"])
        opened.update(p for p in doc["opened"] if not p.endswith((".py", ".pyc", ".so")))
        listed.update(doc["listed"])
        ran.update(doc.get("ran", ()))
    roots = {app.resolve(), site.resolve()}
    extra: set[Path] = set()
    for name, file in modules.items():
        root = (_root_of(name, file) if file else None) or app
        if root.resolve().is_relative_to(site.resolve()) and root.resolve() not in roots:
            extra.add(root.resolve())  # found by an import hook under another name
    imported = {m.split(".")[0] for m in modules} | {a.split(".")[0] for a in aliases}
    data = set()
    for path in opened:  # the package a data file belongs to is one that was imported
        data.update([t for t in _tops(path, [*roots, *extra]) if t in imported][:1])
    dirs = set()
    for path in listed:
        for root in sorted([*roots, *extra], key=lambda r: len(r.parts), reverse=True):
            folder = Path(path).resolve()
            if folder.is_relative_to(root) and folder != root and folder.is_dir():
                rel = folder.relative_to(root)
                if rel.parts[0] in imported:
                    dirs.add(rel.as_posix())
                break
    std_roots = [Path(p) for p in sorted(std)] or imports.stdlib_roots()
    program_roots = [*roots, *extra, *(r.resolve() for r in std_roots)]
    kept = {
        m: file
        for m, file in modules.items()
        # frozen into the interpreter (zipimport, importlib's bootstrap): always there
        if file and m != "__main__" and not _imp.is_frozen(m)
    }
    # what users hand the program at run time (a task file in the working folder, a
    # plugin folder of theirs) is not part of it: the binary imports it as the pex does
    outside = sorted(m for m, f in kept.items() if not _under(f, program_roots))
    if outside:
        log.info(
            "trace: %s imported from outside the program (the check's own files): not packed",
            _some(outside),
        )
    packed = sorted(m for m in kept if m not in outside)
    return Trace(
        modules=tuple(packed),
        ran=tuple(m for m in packed if kept[m] in ran),
        aliases=tuple(sorted(aliases.items())),
        paths=tuple(sorted(p.relative_to(site.resolve()).as_posix() for p in extra)),
        data_packages=tuple(sorted(data)),
        dirs=_outermost(dirs),
        exclude=unreached_stdlib(
            set(modules) | set(aliases), app, site, sorted(extra), stdlib, std_roots=std_roots
        ),
    )


def _under(file: str, roots: Sequence[Path]) -> bool:
    path = Path(file).resolve()
    return any(path.is_relative_to(r) for r in roots)


def unreached_stdlib(
    imported: set[str],
    app: Path,
    site: Path,
    extra: Sequence[Path],
    stdlib: frozenset[str],
    *,
    std_roots: Sequence[Path] = (),
) -> tuple[str, ...]:
    """The standard-library modules a binary may leave out: those that neither the runs
    imported nor anything packed imports by a statement or a constant name its source
    shows, on any path (the program's own code, every module of the lock, and the
    standard-library modules those reach). Packages never imported are left out whole;
    of a package kept, its submodules nothing reaches."""
    packed = pysite.read_site(site).modules() if site.is_dir() else frozenset()
    own = {
        name
        for path in app.rglob("*.py")
        if (name := pysite.module_name(path.relative_to(app).as_posix()))
    }
    finder = imports.Finder([app, site, *extra, *(std_roots or imports.stdlib_roots())])
    reached = imports.closure([*imported, *packed, *own, *_KEEP], finder)
    tops = {n.split(".")[0] for n in reached}
    left = [n for n in stdlib if n not in tops and n not in _KEEP]
    for name in sorted(reached):
        if name.split(".")[0] not in stdlib or name.split(".")[0] in _KEEP:
            continue
        left += [s for s in finder.submodules(name) if s not in reached]
    return tuple(sorted(set(left), key=lambda n: (n.count(".") > 0, n)))


def _outermost(folders: set[str]) -> tuple[str, ...]:
    """The folders not inside another of them (a packed folder holds its subfolders)."""
    kept: list[str] = []
    for folder in sorted(folders):
        if not any(folder.startswith(f"{outer}/") for outer in kept):
            kept.append(folder)
    return tuple(kept)


def _some(names: Sequence[str], most: int = 4) -> str:
    shown = ", ".join(names[:most])
    return f"{shown} and {len(names) - most} more" if len(names) > most else shown


def trace(
    entry: str,
    app: Path,
    site: Path,
    checks: Sequence[Check],
    work: Path,
    *,
    python: Path,
    recipe_path: Path,
) -> Trace:
    """Run ``checks`` against ``entry`` under the tracer, on ``python``; what the runs used."""
    out = work / "records"
    out.mkdir(parents=True)
    tracer = work / "tracer.py"
    shutil.copyfile(Path(__file__).with_name("tracer.py"), tracer)
    program = work / "traced"
    program.write_text(
        f'#!/bin/sh\nexec "{python}" -I -S "{tracer}" "{out}" "{app}" "{site}" "{entry}" "$@"\n',
        encoding="utf-8",
    )
    program.chmod(0o755)
    home = work / "home"
    (home / "tmp").mkdir(parents=True)
    place = run.Local(where=f"the build's Python, {python} (traced)", home=home)
    outcomes = tuple(run.run_one(place, program, entry, check, work) for check in checks)
    traced = run.ArtifactChecks(artifact=f"{entry} (traced)", runs=(run.Run(
        where=place.where, outcomes=outcomes),))  # fmt: skip
    if traced.status == "failed":
        raise CheckFailed(
            "the checks fail under the build's own Python, before Nuitka: "
            + run.describe([traced]),
            hint=f"fix the program, or what the check expects in {recipe_path} [[checks]]",
        )
    stdlib = frozenset(sys.stdlib_module_names)
    found = collect(out, app, site, stdlib)
    log.info(
        "trace: %d module(s) imported (code of %d ran), data of %s, folders listed: %s; "
        "%d standard-library module(s) never imported",
        len(found.modules),
        len(found.ran),
        _some(found.data_packages) or "no package",
        _some(found.dirs) or "none",
        len(found.exclude),
    )
    return found


def apply(options: Mapping[str, str], found: Trace) -> dict[str, str]:
    """The Nuitka options with what the trace found added (and, in include-exclude mode,
    what it never imported left out)."""

    def merged(key: str, more: Sequence[str]) -> str:
        given = [m for m in options.get(key, "").split(",") if m]
        return ",".join(dict.fromkeys([*given, *more]))

    result = dict(options)
    result["include_modules"] = merged("include_modules", found.modules)
    result["run_modules"] = ",".join(found.ran)  # the trace's alone: what it saw run
    result["include_data"] = merged("include_data", found.data_packages)
    result["paths"] = merged("paths", found.paths)
    result["include_dirs"] = merged("include_dirs", found.dirs)
    if options.get("trace") == "include-exclude":
        result["exclude"] = merged("exclude", found.exclude)
    return result
