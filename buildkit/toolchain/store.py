"""Toolchains in the cache: built once per key (atomically, under a lock), checked, used.

Layout under the toolchain folder (``$BUILDKIT_TOOLCHAIN_DIR``, default the cache
root's ``toolchain/``: several caches, a test suite's for one, can share one)::

    <target>-<key>/python/          the installed CPython (static libpython)
    <target>-<key>/toolchain.json   written last: what it was built from
    <target>-<key>/nuitka/<d>/      the venv Nuitka runs from (backends/nuitka.py)
    <target>.lock                   held while one is built
    .tmp-<target>-*/                a build being filled (removed under the lock if stale)

``<key>`` is the first 16 hex digits of :meth:`ToolchainSpec.digest`: a changed source,
zig, build module or hardening table means a new folder; an old one stays until
``buildkit toolchain remove``. A toolchain is built in a ``.tmp-`` folder beside it and renamed
into place complete: an interrupted build leaves no ``<target>-<key>/`` behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import tools
from ..cache import Cache
from ..errors import ToolError
from ..fsutil import atomic_write_text, output_errors, remove_tree
from ..targets import Target
from ..zigcc import zig_version
from . import ToolchainSpec, spec_for

if TYPE_CHECKING:
    from ..hosts.store import Host

log = logging.getLogger(__name__)

RECORD = "toolchain.json"


@dataclass(frozen=True, kw_only=True)
class Toolchain:
    """A built toolchain in the cache."""

    spec: ToolchainSpec
    folder: Path
    record: dict[str, Any]

    @property
    def python(self) -> Path:
        return self.folder / "python" / "bin" / f"python{self.spec.python}"

    @property
    def programs(self) -> Path | None:
        """The folder of the programs built for the build machine (readelf, strip,
        patchelf), when the toolchain has them."""
        from .build import PROGRAMS

        return self.folder / PROGRAMS if self.spec.programs else None

    @property
    def key(self) -> str:
        return self.folder.name


@dataclass(frozen=True, kw_only=True)
class ToolchainStatus:
    target: str
    folder: Path
    ok: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "folder": str(self.folder), "ok": self.ok,
                "detail": self.detail}  # fmt: skip


TOOLCHAIN_ENV = "BUILDKIT_TOOLCHAIN_DIR"


def toolchain_root(cache: Cache) -> Path:
    env = os.environ.get(TOOLCHAIN_ENV)
    return Path(env) if env else cache.root / "toolchain"


def folder_for(spec: ToolchainSpec, cache: Cache) -> Path:
    return toolchain_root(cache) / f"{spec.target}-{spec.digest(zig_version())[:16]}"


@contextlib.contextmanager
def _locked(cache: Cache, target: str) -> Iterator[None]:
    base = toolchain_root(cache)
    with output_errors(base):
        base.mkdir(parents=True, exist_ok=True)
        handle = (base / f"{target}.lock").open("a")
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _record(spec: ToolchainSpec) -> dict[str, Any]:
    from .build import SOURCE_ROOT, zig

    return {
        "target": spec.target,
        "digest": spec.digest(zig_version()),
        "zig": {"version": zig_version(), "path": str(zig()), "target": spec.zig_target},
        "python": spec.python,
        "source_root": SOURCE_ROOT,
        "components": [
            {"name": p.source.name, "version": p.version, "purl": p.purl, "url": p.source.url,
             "sha256": p.source.sha256, "what": p.source.what}
            for p in spec.pinned
        ],
        "programs": [
            {"name": p.source.name, "version": p.version, "purl": p.purl, "url": p.source.url,
             "sha256": p.source.sha256, "what": p.source.what, "built_for": _host_arch()}
            for p in spec.programs
        ],
    }  # fmt: skip


def _sealed_parts(spec: ToolchainSpec) -> tuple[str, ...]:
    """The folders of a toolchain sealed when it is made: what goes into every binary
    (the static CPython) and the programs that edit them."""
    return ("python", "programs") if spec.programs else ("python",)


def _kind(spec: ToolchainSpec, part: str) -> str:
    return f"toolchain {spec.target} {part} {spec.digest(zig_version())}"


def check(spec: ToolchainSpec, folder: Path, cache: Cache) -> str | None:
    """What is wrong with a toolchain folder, or None when it is good to use: its
    interpreter and programs must be, byte for byte, what a build holding this cache's
    key made and sealed (the folder may be shared, restored or written by others)."""
    try:
        record = json.loads((folder / RECORD).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"{folder / RECORD} is missing (an unfinished or foreign folder)"
    except (OSError, ValueError) as exc:
        return f"{folder / RECORD} is unreadable: {exc}"
    if record.get("digest") != spec.digest(zig_version()):
        return f"{folder} was built from another lock"
    python = folder / "python" / "bin" / f"python{spec.python}"
    if not python.is_file():
        return f"its interpreter {python} is missing"
    from .build import PROGRAMS

    for program in ("readelf", "strip", "patchelf") if spec.programs else ():
        if not (folder / PROGRAMS / program).is_file():
            return f"its program {folder / PROGRAMS / program} is missing"
    for part in _sealed_parts(spec):
        if (problem := cache.tree_problem(folder / part, _kind(spec, part))) is not None:
            return f"{folder / part}: {problem}"
    return None


def _emulated_host(target: Target, cache: Cache) -> Host | None:
    """For a toolchain of another architecture: the emulated host its interpreter is
    started on (to check it, and where Nuitka runs on it); None for this machine's."""
    if target.arch == _host_arch():
        return None
    from ..hosts import all_hosts
    from ..hosts.store import use

    spec = next((h for h in all_hosts().values() if h.target == target.name and h.qemu), None)
    if spec is None:
        raise ToolError(
            f"the {target.name} toolchain's interpreter cannot run on this machine, and no "
            "emulated host stands for that target",
            hint="build native binaries for it on its native builder",
        )
    return use(spec, cache)


def _verify_runs(spec: ToolchainSpec, folder: Path, host: Host | None) -> None:
    python = folder / "python" / "bin" / f"python{spec.python}"
    code = (
        "import sys, ssl, zlib, bz2, lzma, ctypes, hashlib, curses; "
        "print('%d.%d' % sys.version_info[:2], ssl.OPENSSL_VERSION)"
    )
    argv = [str(python), "-I", "-c", code]
    what = f"the new {spec.target} interpreter"
    if host is None:
        proc = tools.run(argv, what=what)
    else:
        from ..hosts.store import run_in

        proc = run_in(host, argv, binds=[(folder, str(folder), True)], capture=True, timeout=600)
        if proc.returncode != 0:
            raise ToolError(
                f"{what} does not start on the emulated host {host.spec.name} "
                f"(exit {proc.returncode}): {tools.output_tail(proc)}",
                hint="re-run with --verbose to see the build",
            )
    if not proc.stdout.startswith(spec.python + " "):
        raise ToolError(
            f"the new {spec.target} interpreter reports {proc.stdout.strip()!r}, "
            f"not Python {spec.python}",
            hint="re-run with --verbose to see the build",
        )


def ensure(
    target: Target, cache: Cache, *, force: bool = False, spec: ToolchainSpec | None = None
) -> Toolchain:
    """The target's toolchain (``spec``: another lock's), built now unless a good one is
    in the cache."""
    spec = spec or spec_for(target)
    folder = folder_for(spec, cache)
    with _locked(cache, target.name):
        if folder.exists() and not force:
            problem = check(spec, folder, cache)
            if problem is None:
                record = json.loads((folder / RECORD).read_text(encoding="utf-8"))
                return Toolchain(spec=spec, folder=folder, record=record)
            log.warning("toolchain %s: %s; building it again", target.name, problem)
        # another architecture's is cross-compiled here and checked on its emulated host
        host = _emulated_host(target, cache)
        started = time.monotonic()
        log.info("toolchain %s: building (once per lock; ~15 min on 2 cores)", target.name,
                 extra={"step": "toolchain"})  # fmt: skip
        for stale in folder.parent.glob(f".tmp-{target.name}-*"):
            remove_tree(stale)  # an interrupted build's (we hold the lock)
        staging = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=folder.parent))
        try:
            from .build import build

            build(spec, target, cache, staging)
            _verify_runs(spec, staging, host)
            for part in _sealed_parts(spec):
                cache.seal_tree(staging / part, _kind(spec, part))
            record = _record(spec)
            record["seconds"] = round(time.monotonic() - started)
            atomic_write_text(staging / RECORD, json.dumps(record, indent=2, sort_keys=True) + "\n")
            if folder.exists():
                remove_tree(folder)
            with output_errors(folder.parent):
                os.rename(staging, folder)
        finally:
            remove_tree(staging)
        log.info("toolchain %s: built in %.0f s at %s", target.name,
                 time.monotonic() - started, folder, extra={"step": "toolchain"})  # fmt: skip
    return Toolchain(spec=spec, folder=folder, record=record)


def _host_arch() -> str:
    from ..targets import host_triple

    return host_triple()[1]


def status(target: Target, cache: Cache) -> ToolchainStatus:
    spec = spec_for(target)
    folder = folder_for(spec, cache)
    if not folder.exists():
        return ToolchainStatus(target=target.name, folder=folder, ok=False, detail="not built")
    problem = check(spec, folder, cache)
    if problem is not None:
        return ToolchainStatus(target=target.name, folder=folder, ok=False, detail=problem)
    record = json.loads((folder / RECORD).read_text(encoding="utf-8"))
    parts = [f"{c['name']} {c['version']}" for c in record["components"]]
    zig = record["zig"]
    detail = f"zig {zig['version']} -target {zig['target']}: " + ", ".join(parts)
    programs = [f"{c['name']} {c['version']}" for c in record.get("programs", [])]
    if programs:
        detail += f"; programs for {record['programs'][0]['built_for']}: " + ", ".join(programs)
    return ToolchainStatus(target=target.name, folder=folder, ok=True, detail=detail)
