"""The unit tier's guard holds in every unit test: each way of starting a process fails."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
from collections.abc import Callable

import pytest

from buildkit import tools
from tests.unit.conftest import ProcessStarted

STARTS: dict[str, Callable[[], object]] = {
    "subprocess.run": lambda: subprocess.run(["true"], check=False),
    "subprocess.check_output": lambda: subprocess.check_output(["true"]),
    "buildkit's runner": lambda: tools.run(["true"], what="true"),
    "os.system": lambda: os.system("true"),
    "os.posix_spawn": lambda: os.posix_spawn("/bin/true", ["true"], {}),
    "os.fork": lambda: os.fork(),  # noqa: PLW0108 (looked up when called: the guard patches it)
    "multiprocessing": lambda: multiprocessing.get_context("fork").Process(target=print).start(),
    "multiprocessing spawn": lambda: (
        multiprocessing.get_context("spawn").Process(target=print).start()
    ),
}


@pytest.mark.parametrize("start", STARTS.values(), ids=STARTS.keys())
def test_starting_a_process_fails_the_test(start: Callable[[], object]) -> None:
    with pytest.raises(ProcessStarted, match="unit tests run no program"):
        start()
