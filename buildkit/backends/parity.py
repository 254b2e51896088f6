"""The parity proof: a Nuitka binary imports every module, and reads every package-data
file, that the pex of the same lock does.

The checks are a sample of what users run; the binary's contents must not depend on it.
So after the binary is built, a **proof binary** is built by the same Nuitka command on
the same inputs (the same packed modules, the same compile decisions, so the same C
objects, mostly straight from the compiler cache), in standalone mode, with one change:
its main module, which imports the recipe's entry module exactly as the shipped one does
(so Nuitka follows the same imports) and then, instead of calling the entry, runs the
probe below. The shipped binary has no switch to run anything but its entry; the proof
binary is never shipped.

The probe imports each module of the lock by name (``__main__`` modules aside: importing
them runs a program) and opens each package-data file where the program would find it
(beside its package's ``__file__``). It runs twice: under the build's interpreter with
the locked wheels installed (the pex's contents: the reference) and as the proof binary.
Every module the reference imports must import in the binary; every data file must be
read there with the bytes of the wheel's file. A miss fails the build with exit 1,
naming the first ones; nothing is published. It uses only what every binary holds
(``sys``, ``os``), so it cannot bring in what the shipped binary lacks.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import pysite, tools
from ..errors import CheckFailed, IntegrityError
from ..fsutil import escaped, sha256_file

log = logging.getLogger(__name__)

TIMEOUT = 1800  # seconds for one probe run (awscli: thousands of modules and data files)
MAX_RESULTS = 256 << 20  # bytes of one probe's results file
SHOWN = 8  # misses named in the error

# The probe, after the main module's imports: argv[1] lists what to try, one per line
# ("m NAME", or "d PACKAGE<TAB>PATH-IN-PACKAGE"); argv[2] gets one line per item:
# "m<TAB>ok|fail<TAB>NAME<TAB>why" or "d<TAB>ok|fail<TAB>PACKAGE/PATH<TAB>file or why".
PROBE = r"""
import os as _os


def _why(exc):
    return (type(exc).__name__ + ": " + str(exc)).replace("\n", " ").replace("\t", " ")[:400]


def _probe(listing, out):
    with open(listing, encoding="utf-8") as f:
        items = f.read().splitlines()
    lines = []
    for item in items:
        kind, _, rest = item.partition(" ")
        if kind == "m":
            try:
                __import__(rest)
                lines.append("m\tok\t" + rest + "\t")
            except BaseException as exc:  # SystemExit too: a module that ran something
                lines.append("m\tfail\t" + rest + "\t" + _why(exc))
        elif kind == "d":
            package, _, inner = rest.partition("\t")
            key = package.replace(".", "/") + "/" + inner
            try:
                __import__(package)
                base = _os.path.dirname(sys.modules[package].__file__)
                path = _os.path.join(base, *inner.split("/"))
                with open(path, "rb") as f:
                    f.read()
                lines.append("d\tok\t" + key + "\t" + _os.path.realpath(path))
            except BaseException as exc:
                lines.append("d\tfail\t" + key + "\t" + _why(exc))
    with open(out, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


_probe(sys.argv[1], sys.argv[2])
_os._exit(0)  # no atexit handlers or threads of imported modules after the results
"""


@dataclass(frozen=True, kw_only=True)
class Proof:
    """What the proof showed: counts recorded in the manifest."""

    modules: int  # modules the reference imports that the binary imports too
    data: int  # package-data files the binary reads with the wheel's bytes
    skipped: int  # modules not tried (``__main__``) or failing in the reference too


def main_source(entry: str, paths: Sequence[Path] = ()) -> str:
    """The probe's main module: the entry module imported as the shipped main imports it
    (``paths``: put first on ``sys.path``, for the reference run)."""
    module, _, attrs = entry.partition(":")
    head = attrs.split(".")[0]
    put = f"sys.path[0:0] = {[str(p) for p in paths]!r}\n" if paths else ""
    return f"import sys\n{put}from {module} import {head} as _entry\n{PROBE}"


def _package_of(rel: str, site: pysite.Site) -> tuple[str, str] | None:
    """(the deepest regular package holding the file, the file's path inside it)."""
    parts = rel.split("/")
    modules = site.modules()
    for i in range(len(parts) - 1, 0, -1):
        name = ".".join(parts[:i])
        if name in modules and site.root.joinpath(*parts[:i], "__init__.py").is_file():
            return name, "/".join(parts[i:])
    return None


def listing(packed: Sequence[pysite.Site], excluded: Sequence[str]) -> list[str]:
    """What the probe tries: every module of the recipe's sources and the lock, and every
    data file in a regular package, less what the recipe excludes and ``__main__``
    modules."""

    def out(name: str) -> bool:
        return "__main__" in name.split(".") or any(
            name == e or name.startswith(f"{e}.") for e in excluded
        )

    modules = {m for site in packed for m in site.modules()}
    lines = [f"m {m}" for m in sorted(modules) if not out(m)]
    for site in packed:
        for rel in site.data():
            found = _package_of(rel, site)
            if found is not None and not out(found[0]):
                lines.append(f"d {found[0]}\t{found[1]}")
    return lines


def run_probe(cmd: Sequence[str | Path], items: Path, work: Path, *, what: str) -> list[str]:
    """Run one probe (``cmd`` then the listing and the results file) in an empty folder
    with a private home; its result lines."""
    work.mkdir(parents=True)
    home = work / "home"
    (home / "tmp").mkdir(parents=True)
    results = work / "results.txt"
    tools.run(
        [*cmd, items, results],
        what=what,
        cwd=home,
        timeout=TIMEOUT,
        env={"HOME": str(home), "TMPDIR": str(home / "tmp"), "LC_ALL": "C.UTF-8"},
        hint="a module of the lock hangs or crashes when imported: name it in "
        "[formats].nuitka.exclude if the program never uses it",
    )
    if not results.is_file() or results.stat().st_size > MAX_RESULTS:
        raise IntegrityError(f"{what}: wrote no results", hint="run the build with --verbose")
    return results.read_text(encoding="utf-8", errors="replace").splitlines()


def _parse(lines: list[str]) -> dict[tuple[str, str], tuple[bool, str]]:
    found: dict[tuple[str, str], tuple[bool, str]] = {}
    for line in lines:
        fields = line.split("\t")
        if len(fields) == 4:
            found[(fields[0], fields[2])] = (fields[1] == "ok", fields[3])
    return found


def compare(
    reference: list[str], binary: list[str], *, roots: Sequence[Path], inside: Path, name: str
) -> Proof:
    """The proof's verdict; CheckFailed naming the first misses."""
    ref, got = _parse(reference), _parse(binary)
    missing, differ = [], []
    modules = data = skipped = 0
    for (kind, key), (ok, _) in sorted(ref.items()):
        if not ok:
            skipped += kind == "m"
            continue
        there = got.get((kind, key))
        if there is None or not there[0]:
            why = there[1] if there else "not tried"
            missing.append(f"{'module' if kind == 'm' else 'data file'} {key} ({why})")
            continue
        if kind == "m":
            modules += 1
            continue
        path = Path(there[1])
        original = next((r / key for r in roots if (r / key).is_file()), None)
        if not path.resolve().is_relative_to(inside.resolve()) or not path.is_file():
            differ.append(f"data file {key} (read at {escaped(there[1])}, outside the binary)")
        elif original is None or sha256_file(path) != sha256_file(original):
            differ.append(f"data file {key} (its bytes differ from the wheel's)")
        else:
            data += 1
    problems = missing + differ
    if problems:
        shown = "\n  ".join(problems[:SHOWN])
        more = f"\n  and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""
        raise CheckFailed(
            f"{name}: the binary lacks what the pex of the same lock has "
            f"({len(problems)} of {len(ref) - skipped}):\n  {shown}{more}",
            hint="a module Nuitka did not follow or a file it did not pack: name it in "
            "[formats].nuitka include_modules or include_data, or, if the program never "
            "uses it, in exclude (listed in the build info and the manifest); nothing was "
            "published",
        )
    log.info(
        "parity: %s imports %d module(s) and reads %d data file(s) as the pex does "
        "(%d not tried or failing in the pex too)",
        name,
        modules,
        data,
        skipped,
    )
    return Proof(modules=modules, data=data, skipped=skipped)
