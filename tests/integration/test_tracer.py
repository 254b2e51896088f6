"""The tracer itself, run on a real interpreter: what it records of a program."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from buildkit.checks import trace

pytestmark = pytest.mark.integration


def test_the_tracer_tells_modules_whose_functions_ran_from_those_only_imported(
    tmp_path: Path,
) -> None:
    """A module whose body alone ran (class and constant definitions) is not worth
    compiling; one whose function ran, in the main thread or another, is."""
    app, site, out = tmp_path / "app", tmp_path / "site", tmp_path / "out"
    (app / "tool").mkdir(parents=True)
    site.mkdir()
    out.mkdir()
    (app / "tool" / "__init__.py").write_text("")
    (app / "tool" / "consts.py").write_text("class Table:\n    ROWS = [1, 2]\n\nLIMIT = 3\n")
    (app / "tool" / "unused.py").write_text("def never():\n    return 1\n")
    (app / "tool" / "work.py").write_text("def job(box):\n    box.append(1)\n")
    (app / "tool" / "cli.py").write_text(
        "import threading\n"
        "from tool import consts, unused, work\n"
        "def main():\n"
        "    box = []\n"
        "    t = threading.Thread(target=work.job, args=(box,))\n"
        "    t.start(); t.join()\n"
        "    return 0 if box == [1] and consts.LIMIT == 3 else 1\n"
    )
    tracer = Path(trace.__file__).with_name("tracer.py")
    done = subprocess.run(
        [sys.executable, "-I", "-S", tracer, out, app, site, "tool.cli:main"], check=False
    )
    assert done.returncode == 0
    found = trace.collect(out, app, site, frozenset(sys.stdlib_module_names))
    assert {"tool.consts", "tool.unused", "tool.work", "tool.cli"} <= set(found.modules)
    assert "tool.work" in found.ran and "tool.cli" in found.ran  # work only in a thread
    assert "tool.consts" not in found.ran and "tool.unused" not in found.ran
    assert "threading" in found.ran  # the standard library's count as well
