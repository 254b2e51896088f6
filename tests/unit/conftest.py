"""Unit tests run no program: an autouse guard makes every way of starting a process
fail the test that tried, naming it. A test that needs a real tool, or a worker process,
belongs in tests/integration (see the markers in pyproject.toml)."""

from __future__ import annotations

import _posixsubprocess
import multiprocessing.context
import os
import subprocess
from collections.abc import Iterator
from typing import Any, NoReturn

import pytest


class ProcessStarted(AssertionError):
    """A unit test tried to start a process."""


def _refuse(what: str) -> Any:
    def refuse(*args: object, **kwargs: object) -> NoReturn:
        shown = " ".join(map(str, args[0])) if args and isinstance(args[0], list) else args[:1]
        raise ProcessStarted(
            f"a unit test started a process ({what}: {shown}); unit tests run no program: "
            "use a fake, or move the test to tests/integration"
        )

    return refuse


_ENTRANCES = {
    (subprocess, "Popen"): "subprocess.Popen",
    (_posixsubprocess, "fork_exec"): "fork_exec",
    (os, "fork"): "os.fork",
    (os, "forkpty"): "os.forkpty",
    (os, "posix_spawn"): "os.posix_spawn",
    (os, "posix_spawnp"): "os.posix_spawnp",
    (os, "system"): "os.system",
    (os, "execv"): "os.execv",
    (os, "execve"): "os.execve",
    (multiprocessing.context.BaseContext, "Process"): "multiprocessing",
}


@pytest.fixture(autouse=True)
def no_processes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for (owner, name), what in _ENTRANCES.items():
        if hasattr(owner, name):
            monkeypatch.setattr(owner, name, _refuse(what))
    yield


class InlineWorkers:
    """The audit's worker pool, in this process: each file's checks run exactly as a
    worker runs them (``_work``), without the process that bounds their time and memory.
    The workers themselves are tested in tests/integration/test_audit_workers.py."""

    def __init__(self, jobs: int, time_limit: float, memory_limit: int) -> None:
        del jobs, time_limit, memory_limit

    def run(self, items: Iterator[Any]) -> Iterator[tuple[list[Any], Any, str | None]]:
        from buildkit.audit import run

        found: list[Any] = []
        source = iter(items)
        while True:
            item = found.pop(0) if found else next(source, None)
            if item is None:
                return
            reports, extra, problem = run._work(item)
            found[:0] = extra
            yield reports, item, problem

    def close(self) -> None:
        pass


@pytest.fixture(autouse=True)
def inline_audit(monkeypatch: pytest.MonkeyPatch) -> None:
    from buildkit.audit import run

    monkeypatch.setattr(run, "_Workers", InlineWorkers)


@pytest.fixture(autouse=True)
def private_cache_key(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache key file of unit tests: one of their own, not the user's."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.getbasetemp() / "config"))
    monkeypatch.delenv("BUILDKIT_CACHE_KEY", raising=False)
