"""Emulated host roots in the cache: create once (atomically, under a lock), verify, run.

Layout under the cache root::

    hosts/<name>/root/          the root file system (never changed after creation)
    hosts/<name>/host.json      written last: spec digest, what it was made from
    hosts/<name>/toolkit/<d>/   the builder's toolkit venv (see hosts/builder.py)
    hosts/<name>.lock           held while the host is created

A root is filled in the cache's ``tmp/`` and renamed into place complete: an interrupted
creation leaves nothing under ``hosts/<name>/``. Before each use the root is checked: the
record matches the spec, the interpreter is there, and it runs under emulation reporting
the right architecture and version; a root that fails is refused with what is wrong and
how to make it again.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..cache import Cache
from ..errors import BuildkitError, InputError, ToolError
from ..fsutil import atomic_write_text, output_errors, remove_tree
from ..tools import run
from . import HostSpec
from .emulation import ensure_binfmt, require_root

log = logging.getLogger(__name__)

RECORD = "host.json"
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# What a run inside the root sees: a plain login-like environment, nothing of this machine's.
BASE_ENV = {"PATH": HOST_PATH, "HOME": "/root", "LANG": "C.UTF-8", "TERM": "dumb"}


@dataclass(frozen=True, kw_only=True)
class Host:
    spec: HostSpec
    folder: Path
    cache: Cache  # the cache it lives in (its scratch folders go there too)

    @property
    def root(self) -> Path:
        return self.folder / "root"

    @property
    def record(self) -> Path:
        return self.folder / RECORD


@dataclass(frozen=True, kw_only=True)
class HostStatus:
    name: str
    folder: Path
    ok: bool
    detail: str  # what is wrong, or what the interpreter reported

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "folder": str(self.folder), "ok": self.ok, "detail": self.detail}


def location(spec: HostSpec, cache: Cache) -> Host:
    return Host(spec=spec, folder=cache.hosts / spec.name, cache=cache)


@contextlib.contextmanager
def locked(cache: Cache, name: str) -> Iterator[None]:
    base = cache.hosts
    with output_errors(base):
        base.mkdir(parents=True, exist_ok=True)
        handle = (base / f"{name}.lock").open("a")
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _make(spec: HostSpec, root: Path, cache: Cache, *, mirror: str | None) -> dict[str, str]:
    if spec.kind == "debian":
        from .debian import create

        return create(spec, root, mirror=mirror)
    from .musl import create as create_musl

    return create_musl(spec, root, cache)


def create(spec: HostSpec, cache: Cache, *, force: bool = False, mirror: str | None = None) -> Host:
    """The host's root, made now unless a good one is already in the cache."""
    require_root(f"creating the emulated host {spec.name}")
    if spec.qemu:
        ensure_binfmt(spec.qemu)
    host = location(spec, cache)
    with locked(cache, spec.name):
        if host.folder.exists() and not force:
            problem = check(host)
            if problem is None:
                log.info("host %s: reusing %s", spec.name, host.folder, extra={"step": "host"})
                return host
            log.warning("host %s: %s; making it again", spec.name, problem)
        started = time.monotonic()
        staging = cache.tmp_dir()
        try:
            (staging / "root").mkdir()
            made_from = _make(spec, staging / "root", cache, mirror=mirror)
            fresh = Host(spec=spec, folder=staging, cache=cache)
            atomic_write_text(
                fresh.record,
                json.dumps(
                    {"name": spec.name, "digest": spec.digest(), "made_from": made_from},
                    indent=2,
                    sort_keys=True,
                )
                + "\n",
            )
            cache.seal_tree(fresh.root, _kind(spec))
            if (problem := check(fresh)) is not None:
                raise ToolError(
                    f"the new {spec.name} root does not work: {problem}",
                    hint="re-run with --verbose to see every command",
                )
            _swap_in(staging, host.folder, cache)
        finally:
            remove_tree(staging)
        log.info(
            "host %s: made in %.0f s at %s",
            spec.name,
            time.monotonic() - started,
            host.folder,
            extra={"step": "host"},
        )
    return host


def _swap_in(staging: Path, final: Path, cache: Cache) -> None:
    if final.exists():
        _swap_out(final, cache)
    with output_errors(final.parent):
        os.rename(staging, final)


def _kind(spec: HostSpec) -> str:
    return f"host {spec.name} root {spec.digest()}"


def check(host: Host) -> str | None:
    """What is wrong with the host's root, or None when it is good to use: it must be,
    byte for byte, what a build holding this cache's key made and sealed (checks run in
    it, and its interpreter builds the foreign targets' binaries)."""
    try:
        record = json.loads(host.record.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"{host.record} is missing (an unfinished or foreign folder)"
    except (OSError, ValueError) as exc:
        return f"{host.record} is unreadable: {exc}"
    if record.get("digest") != host.spec.digest():
        return f"{host.folder} was made from another spec (buildkit changed what it holds)"
    if (problem := host.cache.tree_problem(host.root, _kind(host.spec))) is not None:
        return f"{host.root}: {problem}"
    if not host.spec.python:  # a root for native binaries: its shell must start
        try:
            proc = run_in(host, ["/bin/sh", "-c", "exit 0"], capture=True)
        except BuildkitError as exc:
            return f"its shell does not start: {exc.message}"
        if proc.returncode != 0:
            return f"its shell /bin/sh does not run: exit {proc.returncode}"
        return None
    python = host.root / host.spec.python.lstrip("/")
    if not os.path.lexists(python):
        return f"its interpreter {host.spec.python} is missing from {host.root}"
    code = "import platform, sys; print(platform.machine(), '%d.%d' % sys.version_info[:2])"
    try:
        proc = run_in(host, [host.spec.python, "-c", code], capture=True)
    except BuildkitError as exc:
        return f"its interpreter does not start: {exc.message}"
    want = f"aarch64 {host.spec.python_version}" if host.spec.qemu == "aarch64" else None
    seen = proc.stdout.strip()
    if proc.returncode != 0 or (want is not None and seen != want):
        detail = (proc.stderr.strip().splitlines() or [seen or f"exit {proc.returncode}"])[-1]
        return f"its interpreter {host.spec.python} does not run as expected: {detail}"
    return None


def use(spec: HostSpec, cache: Cache) -> Host:
    """The host's root, checked; never made here (that is `buildkit host create`).
    A host not made yet is a usage error (exit 2), a broken one a tool failure (exit 3):
    neither may look like the exit 1 of a program run there."""
    require_root(f"running on the emulated host {spec.name}")
    if spec.qemu:
        ensure_binfmt(spec.qemu)
    host = location(spec, cache)
    if not host.folder.exists():
        raise InputError(
            f"the emulated host {spec.name} does not exist yet (looked in {host.folder})",
            hint=f"make it: buildkit host create {spec.name}",
        )
    if (problem := check(host)) is not None:
        raise ToolError(
            f"the emulated host {spec.name} at {host.folder} is broken: {problem}",
            hint=f"make it again: buildkit host create {spec.name} --force",
        )
    return host


def status(spec: HostSpec, cache: Cache) -> HostStatus:
    host = location(spec, cache)
    if not host.folder.exists():
        return HostStatus(name=spec.name, folder=host.folder, ok=False, detail="not created")
    problem = check(host)
    return HostStatus(
        name=spec.name, folder=host.folder, ok=problem is None, detail=problem or "ok"
    )


def run_in(
    host: Host,
    argv: Sequence[str],
    *,
    binds: Sequence[tuple[Path, str, bool]] = (),
    env: Mapping[str, str] | None = None,
    cwd: str = "/root",
    capture: bool = False,
    timeout: float | None = None,
    scratch_in: Path | None = None,
    stdin: Path | None = None,
    to_files: tuple[Path, Path] | None = None,
    stdout_to_stderr: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` inside the host on a throw-away overlay; return its completed process.

    ``binds``: (folder or file outside, path inside, read only) mounted for the run.
    ``capture``: keep stdout/stderr (checks); otherwise they pass through (run-on).
    ``stdin``: a file fed to the program's standard input. ``to_files``: stdout and stderr
    written to these files; ``stdout_to_stderr``: its stdout passes through to stderr (see
    :func:`buildkit.tools.run`)."""
    if scratch_in is not None:
        with output_errors(scratch_in):
            scratch_in.mkdir(parents=True, exist_ok=True, mode=0o700)
            scratch = Path(tempfile.mkdtemp(prefix=f"run-{host.spec.name}-", dir=scratch_in))
    else:
        scratch = host.cache.tmp_dir(f"run-{host.spec.name}-")
    try:
        spec = {
            "lower": str(host.root),
            "scratch": str(scratch),
            "binds": [[str(o), i, ro] for o, i, ro in binds],
            "argv": list(argv),
            "env": {**BASE_ENV, **(env or {})},
            "cwd": cwd,
        }
        spec_file = scratch / "spec.json"
        spec_file.write_text(json.dumps(spec), encoding="utf-8")
        cmd = ["unshare", "--mount", "--propagation", "private", "--",
               sys.executable, "-m", "buildkit.hosts.enter", str(spec_file)]  # fmt: skip
        proc = run(
            cmd,
            what=f"running {argv[0]} on the emulated host {host.spec.name}",
            capture=capture,
            check=False,
            exact_env={"PATH": os.environ.get("PATH", HOST_PATH), "LC_ALL": "C.UTF-8"},
            timeout=timeout,
            stdin=stdin,
            to_files=to_files,
            stdout_to_stderr=stdout_to_stderr,
        )
        if proc.returncode == 125:
            said = proc.stderr if capture else None
            if to_files is not None:
                said = to_files[1].read_text(encoding="utf-8", errors="replace")[-2000:]
            raise ToolError(
                f"cannot set up the emulated host {host.spec.name}: "
                + (said.strip() if said else "see the message above"),
                hint="run as root on a machine with mount namespaces and overlayfs",
            )
        return proc
    finally:
        remove_tree(scratch)


def remove(spec: HostSpec, cache: Cache) -> Path | None:
    """Delete the host's folder (root and builder toolkits); the path removed, or None."""
    require_root(f"removing the emulated host {spec.name}")
    host = location(spec, cache)
    if not host.folder.exists():
        return None
    with locked(cache, spec.name):
        _swap_out(host.folder, cache)
    return host.folder


def _swap_out(folder: Path, cache: Cache) -> None:
    """Rename away first (a reader never sees a half-deleted root), then delete."""
    trash = cache.tmp_dir("old-") / "old"
    with output_errors(folder.parent):
        os.rename(folder, trash)
    remove_tree(trash.parent)
