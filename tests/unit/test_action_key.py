from __future__ import annotations

import shutil
from pathlib import Path

import buildkit
from buildkit import build


def test_toolkit_digest_sees_every_backend_change(tmp_path: Path) -> None:
    """An artifact built by other toolkit code is never reused from the action cache."""
    copy = tmp_path / "buildkit"
    shutil.copytree(
        Path(buildkit.__file__).parent, copy, ignore=shutil.ignore_patterns("__pycache__")
    )
    before = build.tree_digest(copy)
    assert before == build.toolkit_digest()
    (copy / "__pycache__").mkdir()
    (copy / "__pycache__" / "x.pyc").write_bytes(b"bytecode is not code that decides")
    assert build.tree_digest(copy) == before
    shiv = copy / "backends" / "shiv.py"
    shiv.write_text(shiv.read_text().replace('"--compile-pyc",', ""))
    assert build.tree_digest(copy) != before
