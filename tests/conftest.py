from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
SAMPLES = ("portcheck", "healthcheck", "hostmetrics")
#: The hermetic toolchain every test's Nuitka build uses, whatever its --cache-dir: built
#: once per lock on a machine (ci/emulated-hosts starts it in the background) and kept
#: between runs, as the emulated hosts are.
TOOLCHAIN_DIR = Path(
    os.environ.setdefault(
        "BUILDKIT_TOOLCHAIN_DIR", str(Path.home() / ".cache" / "buildkit-test-toolchain")
    )
)


#: The cache key file every build of the suite uses, whatever HOME a test gives it: the
#: toolchain and hosts above (made by ci/emulated-hosts with the same key) are sealed with
#: it, and a build holding another key would make them again (buildkit/cachekey.py).
os.environ.setdefault("XDG_CONFIG_HOME", str(Path.home() / ".config"))


def with_hardening(text: str, table: str) -> str:
    """A recipe's text with its [hardening] table (and waivers) replaced by ``table``."""
    kept: list[str] = []
    skipping = False
    for line in text.splitlines():
        header = line.strip()
        if header.startswith("["):
            skipping = header in ("[hardening]", "[[hardening.waivers]]")
        if not skipping:
            kept.append(line)
    return "\n".join(kept) + "\n\n" + table.strip() + "\n"


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


INTEGRATION = ROOT / "tests" / "integration"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--all-tiers",
        action="store_true",
        help="run every tier (ci/test does): plain `pytest` runs only the fast tier",
    )


def _fast_tier(config: pytest.Config) -> bool:
    """Plain `pytest` (no paths, no -m, no --all-tiers): unit tests and the recipes' own
    tests only. Naming paths or markers selects exactly those."""
    return (
        not config.getoption("all_tiers")
        and not config.option.markexpr
        and config.args_source == pytest.Config.ArgsSource.TESTPATHS
    )


def _tier_markers(item: pytest.Item) -> list[str]:
    """Markers by where a test lives and what it uses, so `-m` selects by what it costs."""
    if not item.path.is_relative_to(INTEGRATION):
        return []
    found = ["integration"]
    fixtures = getattr(item, "fixturenames", ())
    if (
        "nuitka" in item.name
        or "nuitka_build" in fixtures
        or item.path.stem
        in (
            "test_nuitka",
            "test_onefile_guard",
        )
    ):
        found.append("nuitka")
    if item.path.stem == "test_repro" or "repro" in item.name:
        found.append("repro")
    return found


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tier markers; the fast tier by default; emulated-host tests last (ci/test prepares
    their hosts in the background while the rest of the suite runs, see ci/emulated-hosts)."""
    for item in items:
        for name in _tier_markers(item):
            if item.get_closest_marker(name) is None:
                item.add_marker(name)
    if _fast_tier(config):
        slow = [item for item in items if item.get_closest_marker("integration")]
        if slow:
            config.hook.pytest_deselected(items=slow)
            items[:] = [item for item in items if not item.get_closest_marker("integration")]
    items.sort(key=lambda item: item.get_closest_marker("emulated") is not None)


def pytest_report_header(config: pytest.Config) -> str:
    if _fast_tier(config):
        return "tier: fast (unit and recipe tests); the whole suite: ci/test or --all-tiers"
    return "tier: as selected"
