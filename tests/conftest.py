from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
SAMPLES = ("portcheck", "healthcheck", "hostmetrics")


@pytest.fixture
def recipe_copy(tmp_path: Path):
    """Copy a sample recipe (and its lockfiles) into a project of its own under tmp_path."""

    def make(name: str) -> Path:
        project = tmp_path / "project"
        shutil.copytree(
            RECIPES / name,
            project / "recipes" / name,
            ignore=shutil.ignore_patterns("__pycache__", "tests"),
        )
        lock_src = ROOT / "lockfiles" / name
        if lock_src.is_dir():
            shutil.copytree(lock_src, project / "lockfiles" / name)
        else:
            (project / "lockfiles").mkdir(exist_ok=True)
        return project / "recipes" / name

    return make


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Emulated-host tests run last: ci/test prepares their hosts in the background while
    the rest of the suite runs (see ci/emulated-hosts)."""
    items.sort(key=lambda item: item.get_closest_marker("emulated") is not None)
