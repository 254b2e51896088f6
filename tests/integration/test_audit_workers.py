"""The audit's worker processes: a folder of mutated binaries is audited to the end; a
file that hangs or kills its parser costs one bounded wait and becomes a finding; a
worker killed at any moment never leaves the parent waiting."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from buildkit.audit import elf, run
from buildkit.audit.run import audit_paths
from tests.unit.test_audit_hostile import SEEDS

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def test_a_folder_of_mutants_is_audited_to_the_end(tmp_path: Path) -> None:
    import random

    rng = random.Random(20261128)
    folder = tmp_path / "mutants"
    folder.mkdir()
    for i in range(40):
        data = bytearray(SEEDS[i % 2])
        for _ in range(rng.randint(1, 20)):
            data[rng.randrange(0, 4096)] = rng.randrange(256)
        if i % 3 == 0:
            del data[rng.randrange(64, len(data)) :]
        (folder / f"m{i:02d}").write_bytes(bytes(data))
    before = sorted(os.listdir(tmp_path))
    result = audit_paths([folder])
    assert {f.path for f in result.files} | {p.path for p in result.problems} >= {
        str(p) for p in folder.iterdir() if p.read_bytes()[:4] == b"\x7fELF"
    }
    assert sorted(os.listdir(tmp_path)) == before


def _slow_or_fatal(data: bytes | str, path: str):  # type: ignore[no-untyped-def]
    if path.endswith("hang"):
        time.sleep(60)
    if path.endswith("crash"):
        os.kill(os.getpid(), signal.SIGSEGV)
    return _real_audit(data, path)


_real_audit = elf.audit


def test_hanging_and_crashing_parsers_become_findings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The workers are forked from this process, so they see the patched parser.
    monkeypatch.setattr(elf, "audit", _slow_or_fatal)
    for name in ("a-ok", "b-hang", "c-crash", "d-ok"):
        (tmp_path / name).write_bytes(SEEDS[0])
    started = time.monotonic()
    result = audit_paths([tmp_path], jobs=2, time_limit=2.0)
    assert time.monotonic() - started < 20
    by_name = {Path(f.path).name: f for f in result.files}
    assert set(by_name) == {"a-ok", "b-hang", "c-crash", "d-ok"}
    for name in ("b-hang", "c-crash"):
        parse = by_name[name].check("parse")
        assert parse is not None and "did not finish within 2 s" in parse.evidence
    for name in ("a-ok", "d-ok"):
        assert by_name[name].check("parse") is None


_real_worker_start = run._worker_start


def _recording_start(limit: int, parent: int) -> None:
    """The real initializer, with the worker's SIGTERM mask noted before and after."""
    before = signal.pthread_sigmask(signal.SIG_BLOCK, set())
    _real_worker_start(limit, parent)
    after = signal.pthread_sigmask(signal.SIG_BLOCK, set())
    handler = signal.getsignal(signal.SIGTERM)
    note = f"{signal.SIGTERM in before} {signal.SIGTERM in after} {handler == signal.SIG_DFL}"
    (Path(os.environ["BUILDKIT_TEST_NOTES"]) / str(os.getpid())).write_text(note)


def test_workers_cannot_lose_the_pools_terminate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workers are born with SIGTERM blocked and unblock it once its default action is
    back, so a terminate() that reaches one early is held, not noted by the CLI's
    inherited handler and then dropped (the worker would wait for work for ever, and the
    pool's join with it). With the CLI's handler installed, pools closed at once, many
    times, all finish."""
    monkeypatch.setenv("BUILDKIT_TEST_NOTES", str(tmp_path))
    monkeypatch.setattr(run, "_worker_start", _recording_start)
    previous = signal.signal(signal.SIGTERM, lambda *_: None)  # a Python-level handler
    try:
        workers = run._Workers(2, 30.0, run.MEMORY_LIMIT)
        list(workers.run(iter([])))
        deadline = time.monotonic() + 20
        while len(list(tmp_path.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        workers.close()
        notes = sorted(p.read_text() for p in tmp_path.iterdir())
        assert notes == ["True False True"] * 2  # blocked at birth; default and open after
        started = time.monotonic()
        for _ in range(25):
            run._Workers(2, 30.0, run.MEMORY_LIMIT).close()
        assert time.monotonic() - started < 60
        assert signal.pthread_sigmask(signal.SIG_BLOCK, set()) == set()  # parent unchanged
    finally:
        signal.signal(signal.SIGTERM, previous)


ORPHAN = """
import os, sys, time
from buildkit.audit import run
workers = run._Workers(2, 30.0, run.MEMORY_LIMIT)
holder = os.fork()  # keeps the workers' pipes open: they see no end of input
if holder == 0:
    time.sleep(60)
    os._exit(0)
print(holder, " ".join(str(w.process.pid) for w in workers.workers), flush=True)
time.sleep(60)
"""


def test_workers_end_with_an_audit_killed_by_sigkill(tmp_path: Path) -> None:
    """A SIGKILL of the audit (while its workers still load LIEF) ends the workers at
    once: an orphan would hold the locks it inherited, the cache's owner lock among them,
    and a resumed build could not sweep what the killed one left."""
    proc = subprocess.Popen([sys.executable, "-c", ORPHAN], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    holder, *pids = (int(p) for p in proc.stdout.readline().split())
    assert len(pids) == 2
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 5
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [p for p in pids if Path(f"/proc/{p}").exists()
                 and "Z" not in Path(f"/proc/{p}/stat").read_text().split()[2]]  # fmt: skip
        time.sleep(0.05)
    os.kill(holder, signal.SIGKILL)
    assert not alive, f"workers {alive} outlived the audit"
