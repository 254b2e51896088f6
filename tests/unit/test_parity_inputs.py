"""What a Nuitka binary must hold (parity with the pex) and what it compiles, decided from
the installed site and the sources' import statements, without starting anything."""

from __future__ import annotations

import os
import sysconfig
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from buildkit import imports, pysite
from buildkit.backends import nuitka, parity
from buildkit.errors import CheckFailed, IntegrityError, ToolError

SITE_PACKAGES = Path(sysconfig.get_paths()["purelib"])


def _dist(site: Path, name: str, version: str, files: dict[str, str]) -> None:
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    rows = []
    for rel, text in files.items():
        if not rel.startswith("../"):
            (site / rel).parent.mkdir(parents=True, exist_ok=True)
            (site / rel).write_text(text)
        rows.append(f"{rel},sha256=x,1")
    rows.append(f"{info.name}/METADATA,,")
    (info / "RECORD").write_text("\n".join(rows) + "\n")


def test_module_names_follow_the_import_system() -> None:
    assert pysite.module_name("a/b/c.py") == "a.b.c"
    assert pysite.module_name("a/b/__init__.py") == "a.b"
    assert pysite.module_name("a/_x.cpython-311-x86_64-linux-gnu.so") == "a._x"
    assert pysite.module_name("six.py") == "six"
    assert pysite.module_name("tests-data/x.py") is None  # not importable by name
    assert pysite.module_name("a/b-c.py") is None
    assert pysite.module_name("a/data.json") is None


def test_a_site_lists_every_module_data_file_and_metadata(tmp_path: Path) -> None:
    site = tmp_path / "site"
    _dist(site, "jc", "1.25.6", {
        "jc/__init__.py": "", "jc/cli.py": "", "jc/parsers/__init__.py": "",
        "jc/parsers/date.py": "", "jc/parsers/ps.py": "", "jc/py.typed": "",
        "jc/data/tables.json": "{}", "jc/odd-name.py": "",  # data: not importable by name
        "jc/__pycache__/cli.cpython-311.pyc": "",  # compiled copies are not modules
        "../../bin/jc": "",  # a script pip put beside the site
    })  # fmt: skip
    _dist(site, "six", "1.17.0", {"six.py": ""})
    _dist(site, "google-thing", "1.0", {"google/thing/__init__.py": ""})  # namespace
    found = pysite.read_site(site)
    assert [d.name for d in found.distributions] == ["google-thing", "jc", "six"]
    jc = found.distributions[1]
    assert jc.metadata == "jc-1.25.6.dist-info"
    assert jc.modules == ("jc", "jc.cli", "jc.parsers", "jc.parsers.date", "jc.parsers.ps")
    assert jc.data == ("jc/data/tables.json", "jc/odd-name.py", "jc/py.typed")
    assert found.packages() == ("google", "jc")
    assert found.top_modules() == ("six",)
    assert "google.thing" in found.modules() and "google" in found.modules()


def test_a_record_naming_a_link_or_a_missing_file_is_refused(tmp_path: Path) -> None:
    site = tmp_path / "site"
    _dist(site, "evil", "1.0", {"evil/__init__.py": ""})
    (site / "evil" / "__init__.py").unlink()
    os.symlink("/etc/passwd", site / "evil" / "__init__.py")
    with pytest.raises(IntegrityError, match=r"evil/__init__\.py is listed in its RECORD"):
        pysite.read_site(site)
    (site / "evil" / "__init__.py").unlink()
    with pytest.raises(IntegrityError, match="not a regular file"):
        pysite.read_site(site)


def test_a_real_installed_site_is_read_from_its_records() -> None:
    """This environment's own site-packages, installed by pip from the toolkit lock."""
    found = pysite.read_site(SITE_PACKAGES)
    by_name = {d.name.lower(): d for d in found.distributions}
    packaging = by_name["packaging"]
    assert "packaging.version" in packaging.modules and "packaging" in packaging.packages
    certifi = by_name["certifi"]
    assert "certifi/cacert.pem" in certifi.data
    assert "nuitka.plugins.standard.AntiBloatPlugin" in by_name["nuitka"].modules


def test_imports_as_nuitka_follows_them() -> None:
    source = b"""
import a.b.c
from . import sibling
from ..up import thing
from x import y as z
import importlib
def later():
    import inside_a_function
    importlib.import_module("by.name")
    __import__("dunder")
    importlib.import_module(computed)
try:
    import optional
except ImportError:
    pass
if TYPE_CHECKING:
    import only_for_types
if typing.TYPE_CHECKING:
    import only_for_types_too
if __name__ == "__main__":
    import doctest
else:
    import kept_else
"""
    found = imports.imported_names(source, "pkg.sub.mod", is_package=False)
    assert found == {
        "a", "a.b", "a.b.c", "pkg.sub", "pkg.sub.sibling", "pkg", "pkg.up", "pkg.up.thing",
        "x", "x.y", "importlib", "inside_a_function", "by", "by.name", "dunder", "optional",
        "kept_else",
    }  # fmt: skip
    assert imports.imported_names(b"def (:", "m", is_package=False) == set()


def test_closure_walks_files_and_stops_at_what_no_root_has(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "main.py").write_text("import helper\nfrom missing import x\n")
    (tmp_path / "app" / "helper.py").write_text("import json\n")
    (tmp_path / "app" / "unused.py").write_text("import sqlite3\n")
    finder = imports.Finder([tmp_path / "app", *imports.stdlib_roots()])
    reached = imports.closure(["main"], finder)
    assert {"main", "helper", "json", "json.decoder", "json.scanner"} <= reached
    assert "unused" not in reached and "sqlite3" not in reached and "missing" not in reached
    assert finder.submodules("json") == [
        "json.decoder", "json.encoder", "json.scanner", "json.tool"
    ]  # fmt: skip


def _packed(tmp_path: Path) -> pysite.Site:
    site = tmp_path / "site"
    _dist(site, "jc", "1.25.6", {
        "jc/__init__.py": "", "jc/cli.py": "from jc import lib\n", "jc/lib.py": "",
        "jc/parsers/__init__.py": "", "jc/parsers/date.py": "", "jc/parsers/ls.py": "",
        "jc/py.typed": "", "jc/parsers/table.json": "{}",
    })  # fmt: skip
    _dist(site, "six", "1.17.0", {"six.py": ""})
    _dist(site, "pyyaml", "6.0", {"yaml/__init__.py": "", "_yaml/__init__.py": "",
                                  "_yaml/stubs.pyi": ""})  # fmt: skip
    return pysite.read_site(site)


def test_parity_options_pack_every_distribution_but_what_the_recipe_excludes(
    tmp_path: Path,
) -> None:
    app = tmp_path / "app"
    (app / "tool").mkdir(parents=True)
    (app / "tool" / "__init__.py").write_text("")
    (app / "tool" / "templates").mkdir()
    (app / "tool" / "templates" / "report.txt").write_text("")
    (app / "__buildkit__.json").write_text("{}")  # beside the sources: not in a package
    own = pysite.read_sources(app)
    assert own.packages() == ("tool",) and own.data() == ("tool/templates/report.txt",)
    packed = _packed(tmp_path)
    options = nuitka.parity_options([own, packed], ["_yaml"])
    assert options == [
        "--include-distribution-metadata=jc", "--include-distribution-metadata=pyyaml",
        "--include-distribution-metadata=six",
        "--include-package=tool", "--include-package-data=tool",
        "--include-package=jc", "--include-package-data=jc",
        "--include-package=yaml", "--include-package-data=yaml",
        "--include-module=six",
    ]  # fmt: skip
    # what Nuitka's package-data scan leaves out, named one by one for buildkit's
    # plugin (not the excluded package's stub)
    assert nuitka.skipped_data([own, packed], ["_yaml"]) == [
        f"{packed.root / 'jc/py.typed'}\tjc/py.typed"
    ]


def _job(tmp_path: Path, **settings: str) -> Any:
    app = tmp_path / "app"
    (app / "tool").mkdir(parents=True)
    (app / "tool" / "__init__.py").write_text("")
    (app / "tool" / "main.py").write_text("import jc.cli\n")
    return SimpleNamespace(app_dir=app, entry="tool.main:run", settings=settings)


def test_only_own_code_and_what_ran_is_compiled(tmp_path: Path) -> None:
    packed = _packed(tmp_path)
    # the trace imported jc, jc.cli, jc.parsers.ls and json, and ran functions of two
    traced = _job(tmp_path, compile="own+traced", include_modules="jc,jc.cli,jc.parsers.ls,json",
                  run_modules="jc.cli,jc.parsers.ls")  # fmt: skip
    assert nuitka.bytecode_modules(traced, packed, packed.root) == [
        "_yaml", "jc", "jc.lib", "jc.parsers", "jc.parsers.date", "six", "yaml",
    ]  # fmt: skip
    # without a trace: what the recipe's code reaches through the imports it shows
    followed = _job(tmp_path / "f", compile="own+followed")
    assert nuitka.bytecode_modules(followed, packed, packed.root) == [
        "_yaml", "jc.parsers", "jc.parsers.date", "jc.parsers.ls", "six", "yaml",
    ]  # fmt: skip


def test_the_probe_tries_every_module_and_data_file_but_main_and_exclusions(
    tmp_path: Path,
) -> None:
    site = tmp_path / "site"
    _dist(site, "jc", "1.25.6", {
        "jc/__init__.py": "", "jc/__main__.py": "", "jc/parsers/__init__.py": "",
        "jc/parsers/date.py": "", "jc/tests/__init__.py": "", "jc/parsers/data/x.json": "{}",
        "jc/tests/fixture.txt": "", "jc/py.typed": "",
    })  # fmt: skip
    _dist(site, "nsdist", "1.0", {"ns/inner/__init__.py": "", "ns/loose.txt": ""})
    lines = parity.listing([pysite.read_site(site)], ["jc.tests"])
    assert lines == [
        "m jc", "m jc.parsers", "m jc.parsers.date", "m ns", "m ns.inner",
        "d jc.parsers\tdata/x.json", "d jc\tpy.typed",
    ]  # fmt: skip  # ns/loose.txt: in a namespace package, which has no __file__ to read by
    main = parity.main_source("jc.cli:main", [tmp_path / "app"])
    assert "from jc.cli import main as _entry\n" in main
    compile(main, "main.py", "exec")  # the probe is valid Python


def _results(*lines: str) -> list[str]:
    return [line.replace(" | ", "\t") for line in lines]


def test_parity_holds_when_the_binary_imports_and_reads_what_the_pex_does(
    tmp_path: Path,
) -> None:
    site, inside = tmp_path / "site", tmp_path / "home"
    (site / "jc").mkdir(parents=True)
    (inside / "jc").mkdir(parents=True)
    (site / "jc" / "x.json").write_text("{}")
    (inside / "jc" / "x.json").write_text("{}")
    reference = _results(
        "m | ok | jc | ", "m | ok | jc.parsers.date | ",
        "m | fail | jc.contrib | ImportError: No module named 'optional'",
        f"d | ok | jc/x.json | {site / 'jc' / 'x.json'}",
    )  # fmt: skip
    binary = _results(
        "m | ok | jc | ", "m | ok | jc.parsers.date | ", "m | fail | jc.contrib | same",
        f"d | ok | jc/x.json | {inside / 'jc' / 'x.json'}",
    )  # fmt: skip
    proof = parity.compare(reference, binary, roots=[site], inside=inside, name="jc")
    assert proof == parity.Proof(modules=2, data=1, skipped=1)

    # a module the pex imports and the binary cannot: the build fails, naming it
    lacking = [binary[0], "m\tfail\tjc.parsers.date\tModuleNotFoundError: No module named "
               "'jc.parsers.date'", *binary[2:]]  # fmt: skip
    with pytest.raises(CheckFailed, match=r"lacks what the pex .* \(1 of 3\):\n  module "
                       r"jc\.parsers\.date \(ModuleNotFoundError"):  # fmt: skip
        parity.compare(reference, lacking, roots=[site], inside=inside, name="jc")
    # not tried at all (the probe died half way) is a miss too
    with pytest.raises(CheckFailed, match=r"data file jc/x\.json \(not tried\)"):
        parity.compare(reference, binary[:3], roots=[site], inside=inside, name="jc")
    # read, but from outside the binary's own files, or with other bytes
    elsewhere = [*binary[:3], f"d\tok\tjc/x.json\t{site / 'jc' / 'x.json'}"]
    with pytest.raises(CheckFailed, match="outside the binary"):
        parity.compare(reference, elsewhere, roots=[site], inside=inside, name="jc")
    (inside / "jc" / "x.json").write_text("{ }")
    with pytest.raises(CheckFailed, match="its bytes differ from the wheel's"):
        parity.compare(reference, binary, roots=[site], inside=inside, name="jc")


def test_a_module_nuitka_cannot_find_is_named_with_who_asked_for_it() -> None:
    failed = ToolError(
        "nuitka build for linux-amd64 failed (exit 1): python -m nuitka ...\n"
        "FATAL: Error, failed to locate module 'fabfile' you asked to include.",
        hint="re-run with --verbose to see every command",
    )
    traced = nuitka._explained(failed, {"trace": "include", "include_modules": "fab,fabfile"})
    assert "Nuitka could not find module 'fabfile', which the trace of the recipe's checks" in (
        traced.message
    )
    assert "fixture file" in (traced.hint or "") and traced.exit_code == 3
    asked = nuitka._explained(failed, {"trace": "off", "include_modules": "fabfile"})
    assert "which the recipe's [formats].nuitka options name" in asked.message
    other = ToolError("nuitka build failed (exit 1): out of memory")
    assert nuitka._explained(other, {}) is other
