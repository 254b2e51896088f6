"""The origin guard Nuitka runs as a user plugin: a module from outside the program's
folders (the toolkit's site-packages, a folder of the build machine) stops the build."""

from __future__ import annotations

import sysconfig
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # Nuitka imports imp under 3.11
    from buildkit.backends import nuitka_origin

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def _module(name: str, filename: str | None, *, main: bool = False) -> SimpleNamespace:
    return SimpleNamespace(
        getFullName=lambda: name,
        isMainModule=lambda: main,
        getCompileTimeFilename=lambda: filename,
    )


def _guard(monkeypatch: pytest.MonkeyPatch, *roots: Path) -> nuitka_origin.BuildkitOrigin:
    monkeypatch.setenv("BUILDKIT_NUITKA_ROOTS", ":".join(str(r) for r in roots))
    return nuitka_origin.BuildkitOrigin()


def test_the_program_its_lock_and_the_standard_library_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, site = tmp_path / "app", tmp_path / "site"
    guard = _guard(monkeypatch, app, site)
    guard.onModuleCompleteSet((
        _module("__main__", str(tmp_path / "main.py"), main=True),
        # Nuitka's glue: the main script again for multiprocessing's children, and the
        # code its plugins run around a module's load
        _module("__parents_main__", str(tmp_path / "main.py")),
        _module("__parents_main__-preLoad", str(tmp_path / "__parents_main__-preLoad.py")),
        _module("tool.cli", str(app / "tool" / "cli.py")),
        _module("six", str(site / "six.py")),
        _module("json", str(STDLIB / "json" / "__init__.py")),
        _module("_csv", str(STDLIB / "lib-dynload" / "_csv.so")),
        _module("sys", None),  # built in
    ))  # fmt: skip


def test_a_module_from_anywhere_else_stops_the_build_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    app, site = tmp_path / "app", tmp_path / "site"
    guard = _guard(monkeypatch, app, site)
    toolkit = tmp_path / "nuitka-venv" / "lib" / "python3.11" / "site-packages"
    with pytest.raises(SystemExit):
        guard.onModuleCompleteSet((
            _module("tool.cli", str(app / "tool" / "cli.py")),
            _module("pygments.lexers", str(toolkit / "pygments" / "lexers" / "__init__.py")),
            # the interpreter's own site-packages is not its standard library
            _module("rich", str(STDLIB / "site-packages" / "rich" / "__init__.py")),
            # a sibling folder whose name starts like a root's
            _module("evil", str(tmp_path / "app2" / "evil.py")),
            _module("__parents_main__", str(tmp_path / "other.py")),  # not the main script
        ))  # fmt: skip
    said = capsys.readouterr()
    text = said.out + said.err
    assert "4 module(s) from outside the recipe's sources" in text, text
    assert "pygments.lexers (" in text and "rich (" in text and "evil (" in text, text
