"""The entry point is checked before anything is built: module and attribute exist."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from buildkit import entry
from buildkit.errors import RecipeError
from buildkit.wheelhouse import Wheel
from tests.unit.test_recipe import GOOD, load, write

CLI = """\
import sys
from argparse import ArgumentParser as Parser

VERSION = "1"

def main():
    return 0

class App:
    def run(self):
        pass

try:
    import fast as speedups
except ImportError:
    speedups = None

if sys.platform == "win32":
    def console():
        pass
"""


def _recipe(tmp_path: Path, entry_point: str, source: str = CLI, sources: str = '["src"]'):
    path = write(tmp_path, GOOD.replace('"probe.cli:main"', f'"{entry_point}"'))
    (tmp_path / "src" / "probe" / "cli.py").write_text(source)
    if sources != '["src"]':
        path.write_text(path.read_text().replace('sources = ["src"]', f"sources = {sources}"))
    return load(path)


def _wheel(tmp_path: Path, files: dict[str, str]) -> Wheel:
    path = tmp_path / "tool-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return Wheel(name="tool", version="1.0", filename=path.name, sha256="0" * 64, path=path)


@pytest.mark.parametrize(
    "entry_point",
    ["probe.cli:main", "probe.cli:App", "probe.cli:App.run", "probe.cli:VERSION",
     "probe.cli:speedups", "probe.cli:console", "probe.cli:Parser", "probe.cli:sys"],
)  # fmt: skip
def test_entries_the_module_defines_pass(tmp_path: Path, entry_point: str) -> None:
    entry.check(_recipe(tmp_path, entry_point), [])


def test_a_typo_names_the_entry_the_file_and_the_closest_match(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path, "probe.cli:mian")
    with pytest.raises(RecipeError) as err:
        entry.check(recipe, [])
    message = err.value.message
    assert message.startswith(f"{recipe.path}:4: [recipe].entry: 'probe.cli:mian'")
    assert "probe.cli (src/probe/cli.py) has no 'mian'; did you mean 'main'?" in message
    assert err.value.exit_code == 2
    assert "main" in (err.value.hint or "")


def test_a_method_typo_is_found_in_the_class_body(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match=r"probe.cli.App \(src/probe/cli.py\) has no 'runn'"):
        entry.check(_recipe(tmp_path, "probe.cli:App.runn"), [])


def test_an_entry_in_a_wheel_is_read_from_the_wheel(tmp_path: Path) -> None:
    wheel = _wheel(
        tmp_path,
        {"tool/__init__.py": "from .cli import main\n", "tool/cli.py": "def main(): pass\n"},
    )
    entry.check(_recipe(tmp_path, "tool:main", sources="[]"), [wheel])
    entry.check(_recipe(tmp_path, "tool.cli:main", sources="[]"), [wheel])
    with pytest.raises(RecipeError, match=r"tool/cli.py in tool-1.0-py3-none-any.whl\) has no"):
        entry.check(_recipe(tmp_path, "tool.cli:mian", sources="[]"), [wheel])


def test_a_module_nowhere_is_refused(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path, {"tool/__init__.py": ""})
    with pytest.raises(RecipeError, match="module 'tol' is in neither the recipe's sources"):
        entry.check(_recipe(tmp_path, "tol:main", sources="[]"), [wheel])


@pytest.mark.parametrize(
    "source",
    ["from .impl import *\n", "def __getattr__(name):\n    return name\n",
     "globals()['main'] = print\n"],
)  # fmt: skip
def test_modules_that_make_names_at_run_time_are_left_to_the_checks(
    tmp_path: Path, source: str
) -> None:
    entry.check(_recipe(tmp_path, "probe.cli:main", source=source), [])
