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
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.pool import AsyncResult, Pool
from pathlib import Path

from .components import classify
from .findings import FileReport, unparseable
from .walk import Native, NotAudited, Problem, walk

log = logging.getLogger(__name__)

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


def _worker_start(limit: int) -> None:
    """Cap the worker's memory, then load the parsers while the parent walks the tree."""
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
        context = multiprocessing.get_context("fork")
        return context.Pool(self.jobs, initializer=_worker_start, initargs=(self.memory_limit,))

    def run(self, items: Iterator[Native]) -> Iterator[list[FileReport]]:
        """Reports for each item, in order."""
        pending: deque[tuple[Native, AsyncResult[list[FileReport]], float]] = deque()
        source = iter(items)
        exhausted = False
        while pending or not exhausted:
            while not exhausted and len(pending) < 2 * self.jobs:
                item = next(source, None)
                if item is None:
                    exhausted = True
                    break
                pending.append((item, self._submit(item), time.monotonic()))
            if not pending:
                break
            item, result, started = pending[0]
            wait = max(0.0, started + self.time_limit - time.monotonic())
            try:
                reports = result.get(timeout=wait)
            except multiprocessing.TimeoutError:
                yield [self._overran(item)]
                pending.popleft()
                self.pool.terminate()
                self.pool = self._start()
                now = time.monotonic()
                pending = deque((i, self._submit(i), now) for i, _, _ in pending)
                continue
            pending.popleft()
            yield reports

    def _submit(self, item: Native) -> AsyncResult[list[FileReport]]:
        return self.pool.apply_async(audit_native, (item,))

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

    workers = _Workers(jobs or min(os.cpu_count() or 1, 4), time_limit, memory_limit)
    try:
        for found in workers.run(natives()):
            reports += found
    finally:
        workers.close()
    return AuditResult(files=tuple(reports), problems=tuple(problems), not_audited=tuple(skipped))
