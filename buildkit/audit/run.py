"""Audit paths: every native file found, each with its checks and its component.

Files are parsed in worker processes, each under a memory limit (``RLIMIT_AS``) and a
time limit per file: a file that makes the parser run too long, exhaust memory or crash
becomes an ``unparseable`` finding, and the audit goes on with a fresh worker. Workers
talk to the parent over pipes of their own and hold no shared lock, so a stop (SIGTERM
to the whole process group) ends the audit at once.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import resource
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from hashlib import sha256
from multiprocessing.connection import Connection, wait
from pathlib import Path

from ..fsutil import sha256_file
from . import zipboot
from .components import classify
from .findings import NO_FILTER, Check, FileReport, State, unparseable
from .walk import Boot, Native, NotAudited, Problem, onefile_members, walk

log = logging.getLogger(__name__)

_Result = tuple[list[FileReport], list[Native], str | None]
TIME_LIMIT = 30.0  # seconds per native file
MEMORY_LIMIT = 4 << 30  # bytes of address space per worker


@dataclass(frozen=True, kw_only=True)
class AuditResult:
    files: tuple[FileReport, ...]
    problems: tuple[Problem, ...]  # inputs that could not be read (exit code 2)
    not_audited: tuple[NotAudited, ...]

    @property
    def unparseable(self) -> tuple[FileReport, ...]:
        return tuple(f for f in self.files if f.check("parse") is not None)


def audit_native(item: Native) -> list[FileReport]:
    from . import elf, macho  # in the worker: the parent never loads LIEF

    digest = ""
    try:
        whole = item.source and item.offset == 0 and os.path.getsize(item.source) == item.size
        data: bytes | str = item.source if whole else item.read()
        digest = sha256_file(Path(data)) if isinstance(data, str) else sha256(data).hexdigest()
        reports = (
            [elf.audit(data, item.path)] if item.format == "elf" else macho.audit(data, item.path)
        )
    except OSError as exc:
        reports = [unparseable(item.path, f"cannot read: {exc.strerror}", fmt=item.format)]
    except MemoryError:
        reports = [unparseable(item.path, "parsing ran out of memory", fmt=item.format)]
    except Exception as exc:  # a parser bug on hostile input is a finding, not a crash
        reports = [unparseable(item.path, f"parser error: {exc!r}"[:300], fmt=item.format)]
    component, origin, source = classify(item.member, item.artifact, item.context)
    return [
        replace(
            r.placed(component=component, origin=origin, source=source, artifact=item.artifact),
            sha256=digest,
        )
        for r in reports
    ]


def _work(item: Native) -> tuple[list[FileReport], list[Native], str | None]:
    """In a worker: a onefile binary's payload members first found, then the checks."""
    extra: list[Native] = []
    problem = None
    if item.scan:
        try:
            item, extra, problem = onefile_members(item)
        except (OSError, ValueError) as exc:
            problem = f"cannot read: {exc}"
    return audit_native(item), extra, problem


def _die_with(parent: int) -> None:
    """A worker ends with the audit that started it, even one killed by SIGKILL: an
    orphan would go on holding what it inherited (the cache's owner lock, which keeps a
    stopped build's leftovers from being swept) until it noticed its pipe had closed."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            pr_set_pdeathsig = 1
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
        except (ImportError, OSError, AttributeError):  # an interpreter built without ctypes
            log.debug("no prctl: a worker orphaned by a SIGKILL ends at its pipe's end")
    if os.getppid() != parent:  # it died before the line above
        os._exit(0)


def _worker_start(limit: int, parent: int) -> None:
    """Cap the worker's memory, then load the parsers while the parent walks the tree.

    Signals get their defaults back: the CLI's SIGTERM handler (inherited by fork) would
    turn a stop into an exception inside a worker; SIGINT (a Ctrl-C to the process group)
    is the parent's to handle. The worker is born with SIGTERM blocked (``_Worker``) and
    unblocks it only once the default action is back, so a SIGTERM that came earlier is
    held until it kills the worker."""
    _die_with(parent)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    soft = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    from . import elf, macho  # noqa: F401


def _serve(conn: Connection, limit: int, parent: int) -> None:
    """A worker's loop: one item in, its result out, until the parent closes the pipe."""
    _worker_start(limit, parent)
    while True:
        try:
            item = conn.recv()
        except (EOFError, OSError):
            return
        if item is None:
            return
        conn.send(_work(item))


def load_parsers() -> None:
    """Import LIEF (through our parsers) with SIGTERM and SIGINT held: a stop that lands
    inside its C++ initialisation would abort the process instead of unwinding it. A
    signal that came meanwhile is delivered once the import is done."""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    try:
        from . import elf, macho  # noqa: F401
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


class _Worker:
    """One parser process with a pipe of its own. Workers share no lock with the parent
    or each other, so a worker killed at any moment (a SIGTERM to the whole process
    group, a crash, an overrun) can never leave the parent waiting: its pipe simply
    ends. multiprocessing.Pool could: its workers share a queue lock that a worker killed
    while waiting for work never releases, and the pool's terminate waits on it."""

    def __init__(self, memory_limit: int) -> None:
        context = multiprocessing.get_context("fork")
        self.conn, child = context.Pipe()
        self.process = context.Process(
            target=_serve, args=(child, memory_limit, os.getpid()), daemon=True
        )
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        try:
            self.process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
        child.close()
        self.item: Native | None = None
        self.since = 0.0

    def give(self, item: Native) -> None:
        self.item, self.since = item, time.monotonic()
        self.conn.send(item)

    def kill(self) -> None:
        if self.process.exitcode is None:
            self.process.kill()
        self.process.join(5)
        self.conn.close()


class _Workers:
    """Parser processes, each given one file at a time; one that overruns its time or
    dies is replaced, and its file becomes an ``unparseable`` finding."""

    def __init__(self, jobs: int, time_limit: float, memory_limit: int) -> None:
        self.time_limit = time_limit
        self.memory_limit = memory_limit
        self.workers = [_Worker(memory_limit) for _ in range(jobs)]

    def run(self, items: Iterator[Native]) -> Iterator[tuple[list[FileReport], Native, str | None]]:
        """Reports for each item (and the items a onefile payload adds, soon after it),
        with the item and why part of it could not be read."""
        found: deque[Native] = deque()  # payload members, audited before further items
        source = iter(items)
        exhausted = False
        idle = list(self.workers)
        busy: dict[Connection, _Worker] = {}
        while True:
            while idle and (found or not exhausted):
                item = found.popleft() if found else next(source, None)
                if item is None:
                    exhausted = True
                    break
                worker = idle.pop()
                try:
                    worker.give(item)
                except OSError:  # it died while idle: a fresh one takes the file
                    worker = self._replace(worker)
                    worker.give(item)
                busy[worker.conn] = worker
            if not busy:
                return
            deadline = min(w.since for w in busy.values()) + self.time_limit
            ready = set(wait(list(busy), timeout=max(0.0, deadline - time.monotonic())))
            for conn, worker in [(c, w) for c, w in busy.items() if c in ready]:
                del busy[conn]
                item = worker.item
                assert item is not None
                try:
                    result: _Result = worker.conn.recv()
                    reports, extra, problem = result
                except (EOFError, OSError):  # the worker died (a crash, a signal)
                    yield [self._overran(item)], item, None
                    idle.append(self._replace(worker))
                    continue
                found.extendleft(reversed(extra))
                idle.append(worker)
                yield reports, item, problem
            now = time.monotonic()
            for conn, worker in list(busy.items()):
                if now - worker.since >= self.time_limit and worker.item is not None:
                    del busy[conn]
                    yield [self._overran(worker.item)], worker.item, None
                    idle.append(self._replace(worker))

    def _replace(self, worker: _Worker) -> _Worker:
        worker.kill()
        fresh = _Worker(self.memory_limit)
        self.workers[self.workers.index(worker)] = fresh
        return fresh

    def _overran(self, item: Native) -> FileReport:
        log.warning("%s: no result within %.0f s", item.path, self.time_limit)
        report = unparseable(
            item.path,
            f"the parser did not finish within {self.time_limit:.0f} s (or crashed)",
            fmt=item.format,
        )
        component, origin, source = classify(item.member, item.artifact, item.context)
        return report.placed(
            component=component, origin=origin, source=source, artifact=item.artifact
        )

    def close(self) -> None:
        """Kill every worker (SIGKILL: nothing to wait for, no lock to take)."""
        for worker in self.workers:
            worker.kill()


def _under_filter(reports: list[FileReport]) -> list[FileReport]:
    """A onefile bootstrap's filter stays through fork and exec: the programs in its
    payload, which it starts, run under it and need none of their own."""
    filtered = {
        r.artifact
        for r in reports
        if r.path == r.artifact and (c := r.check("seccomp")) and c.state is State.PASS
    }
    out = []
    for report in reports:
        c = report.check("seccomp")
        if (
            report.artifact in filtered
            and report.path != report.artifact
            and c
            and (c.evidence == NO_FILTER)
        ):
            note = Check(
                name="seccomp",
                state=State.NOT_APPLICABLE,
                evidence=f"started by {report.artifact}'s bootstrap, whose filter it runs under",
            )
            checks = tuple(note if x.name == "seccomp" else x for x in report.checks)
            report = replace(report, checks=checks)  # noqa: PLW2901
        out.append(report)
    return out


def audit_paths(
    paths: list[Path],
    names: dict[Path, str] | None = None,
    *,
    jobs: int | None = None,
    time_limit: float = TIME_LIMIT,
    memory_limit: int = MEMORY_LIMIT,
    meanwhile: Callable[[], object] | None = None,
) -> AuditResult:
    """Audit every native file under ``paths``; ``meanwhile`` is work for this process
    while the workers start (imports the caller needs next)."""
    reports: list[FileReport] = []
    problems: list[Problem] = []
    skipped: list[NotAudited] = []
    order: list[str] = []

    def natives() -> Iterator[Native]:
        for item in walk(paths, names):
            if isinstance(item, Native):
                log.debug("auditing %s", item.path)
                order.append(item.artifact)
                yield item
            elif isinstance(item, Problem):
                problems.append(item)
            elif isinstance(item, Boot):
                order.append(item.artifact)
                if (row := zipboot.report(item.text, item.path, item.artifact)) is not None:
                    reports.append(row)
            else:
                skipped.append(item)

    # The workers load the parsers themselves (LIEF's import is most of a small audit's
    # time): this process goes on meanwhile. No more workers than the walk's first items
    # need: one small file costs one import, a folder with no native file none; a onefile
    # binary's payload members come later, so it counts as many.
    source = natives()
    head: list[Native] = []
    limit = jobs or min(os.cpu_count() or 1, 4)
    weight = 0
    while weight < limit and (nxt := next(source, None)) is not None:
        head.append(nxt)
        weight += limit if nxt.scan else 1
    if head:
        workers = _Workers(min(limit, weight), time_limit, memory_limit)
        try:
            if meanwhile is not None:
                meanwhile()
            for found, item, problem in workers.run(itertools.chain(head, source)):
                reports += found
                if problem is not None:
                    problems.append(Problem(path=item.path, reason=problem, artifact=item.artifact))
        finally:
            workers.close()
    # Workers finish in any order and payload members join late: report by artifact, in
    # the order the walk met the artifacts, each file's own path first.
    first = {a: i for i, a in enumerate(dict.fromkeys(order))}
    reports.sort(key=lambda r: (first.get(r.artifact, len(first)), r.path != r.artifact, r.path))
    reports = _under_filter(reports)
    return AuditResult(files=tuple(reports), problems=tuple(problems), not_audited=tuple(skipped))
