"""Audit paths: every native file found, each with its checks and its component.

Files are parsed in worker processes, each under a memory limit (``RLIMIT_AS``) and a
time limit per file: a file that makes the parser run too long, exhaust memory or crash
becomes an ``unparseable`` finding, and the audit goes on with a fresh worker.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import resource
import signal
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.pool import AsyncResult, Pool
from pathlib import Path

from .components import classify
from .findings import FileReport, unparseable
from .walk import Native, NotAudited, Problem, onefile_members, walk

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

    try:
        whole = item.source and item.offset == 0 and os.path.getsize(item.source) == item.size
        data: bytes | str = item.source if whole else item.read()
        reports = (
            [elf.audit(data, item.path)] if item.format == "elf" else macho.audit(data, item.path)
        )
    except OSError as exc:
        reports = [unparseable(item.path, f"cannot read: {exc.strerror}", fmt=item.format)]
    except MemoryError:
        reports = [unparseable(item.path, "parsing ran out of memory", fmt=item.format)]
    except Exception as exc:  # a parser bug on hostile input is a finding, not a crash
        reports = [unparseable(item.path, f"parser error: {exc!r}"[:300], fmt=item.format)]
    component, origin = classify(item.member, item.artifact, item.context)
    return [r.placed(component=component, origin=origin, artifact=item.artifact) for r in reports]


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


def _worker_start(limit: int) -> None:
    """Cap the worker's memory, then load the parsers while the parent walks the tree.

    Signals get their defaults back: the CLI's SIGTERM handler (inherited by fork) would
    turn the pool's own terminate() into an exception inside a worker; SIGINT (a Ctrl-C
    to the process group) is the parent's to handle. The worker is born with SIGTERM
    blocked (``_Workers._start``) and unblocks it only now, so a terminate() that came
    earlier is held until the default action kills the worker."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    soft = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    from . import elf, macho  # noqa: F401


class _Workers:
    """A pool of parser processes, replaced whole when one file overruns its time."""

    def __init__(self, jobs: int, time_limit: float, memory_limit: int) -> None:
        self.jobs = jobs
        self.time_limit = time_limit
        self.memory_limit = memory_limit
        self.pool = self._start()

    def _start(self) -> Pool:
        """A new pool. SIGTERM is blocked while it forks its workers and starts the thread
        that forks their replacements, so every worker starts with it blocked. Without
        that, a terminate() reaching a worker before ``_worker_start`` was lost: the
        inherited handler noted it, SIG_DFL replaced the handler before it ran, and the
        worker waited for work for ever while the pool waited for it (seen in the test
        that stops a build with SIGTERM)."""
        context = multiprocessing.get_context("fork")
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        try:
            return context.Pool(self.jobs, initializer=_worker_start, initargs=(self.memory_limit,))
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)

    def run(self, items: Iterator[Native]) -> Iterator[tuple[list[FileReport], Native, str | None]]:
        """Reports for each item (and the items a onefile payload adds, right after it),
        with the item and why part of it could not be read."""
        # Keep the workers fed (a window of queued files); the oldest file's clock starts
        # when it reaches the head of the queue, so waiting behind others does not count.
        pending: deque[tuple[Native, AsyncResult[_Result]]] = deque()
        found: deque[Native] = deque()  # payload members, audited before further items
        source = iter(items)
        exhausted = False
        head_since = time.monotonic()
        while pending or found or not exhausted:
            while len(pending) < 16 * self.jobs and (found or not exhausted):
                item = found.popleft() if found else next(source, None)
                if item is None:
                    exhausted = True
                    break
                pending.append((item, self._submit(item)))
            if not pending:
                continue
            item, result = pending[0]
            wait = max(0.0, head_since + self.time_limit - time.monotonic())
            try:
                reports, extra, problem = result.get(timeout=wait)
            except multiprocessing.TimeoutError:
                yield [self._overran(item)], item, None
                pending.popleft()
                self.pool.terminate()
                self.pool = self._start()
                pending = deque((i, self._submit(i)) for i, _ in pending)
                head_since = time.monotonic()
                continue
            pending.popleft()
            head_since = time.monotonic()
            found.extendleft(reversed(extra))
            yield reports, item, problem

    def _submit(self, item: Native) -> AsyncResult[_Result]:
        return self.pool.apply_async(_work, (item,))

    def _overran(self, item: Native) -> FileReport:
        log.warning("%s: no result within %.0f s", item.path, self.time_limit)
        report = unparseable(
            item.path,
            f"the parser did not finish within {self.time_limit:.0f} s (or crashed)",
            fmt=item.format,
        )
        component, origin = classify(item.member, item.artifact, item.context)
        return report.placed(component=component, origin=origin, artifact=item.artifact)

    def close(self) -> None:
        self.pool.terminate()
        self.pool.join()


def audit_paths(
    paths: list[Path],
    names: dict[Path, str] | None = None,
    *,
    jobs: int | None = None,
    time_limit: float = TIME_LIMIT,
    memory_limit: int = MEMORY_LIMIT,
) -> AuditResult:
    reports: list[FileReport] = []
    problems: list[Problem] = []
    skipped: list[NotAudited] = []

    def natives() -> Iterator[Native]:
        for item in walk(paths, names):
            if isinstance(item, Native):
                log.debug("auditing %s", item.path)
                yield item
            elif isinstance(item, Problem):
                problems.append(item)
            else:
                skipped.append(item)

    from . import elf, macho  # noqa: F401  loaded once, before the workers fork

    workers = _Workers(jobs or min(os.cpu_count() or 1, 4), time_limit, memory_limit)
    try:
        for found, item, problem in workers.run(natives()):
            reports += found
            if problem is not None:
                problems.append(Problem(path=item.path, reason=problem, artifact=item.artifact))
    finally:
        workers.close()
    # Workers finish in any order and payload members join late: report by artifact, in
    # the order the artifacts were given, each file's own path first.
    first = {a: i for i, a in reversed(list(enumerate(r.artifact for r in reports)))}
    reports.sort(key=lambda r: (first[r.artifact], r.path != r.artifact, r.path))
    return AuditResult(files=tuple(reports), problems=tuple(problems), not_audited=tuple(skipped))
