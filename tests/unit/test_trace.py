"""What a trace record becomes: Nuitka includes, search folders, data, excludes."""

from __future__ import annotations

import json
import sysconfig
from pathlib import Path

from buildkit.checks import trace

STDLIB = sysconfig.get_paths()["stdlib"]


def _record(out: Path, n: int, **doc: object) -> None:
    out.mkdir(exist_ok=True)
    full = {"modules": {}, "aliases": {}, "opened": [], "listed": [], **doc}
    (out / f"{n}.json").write_text(json.dumps(full))


def test_root_of_a_module_laid_out_by_its_name() -> None:
    assert trace._root_of("a.b", "/s/a/b.py") == Path("/s")
    assert trace._root_of("a.b", "/s/a/b/__init__.py") == Path("/s")
    assert trace._root_of("a._c", "/s/a/_c.cpython-311-x86_64-linux-gnu.so") == Path("/s")
    assert trace._root_of("botocore", "/s/awscli/botocore/__init__.py") == Path("/s/awscli")
    assert trace._root_of("a.b", "/s/x/y.py") is None


def test_collect_merges_runs_and_finds_hooked_folders_and_data(tmp_path: Path) -> None:
    app, site, out = tmp_path / "app", tmp_path / "site", tmp_path / "out"
    for folder in (app / "tool", site / "awscli" / "botocore" / "data", site / "six"):
        folder.mkdir(parents=True)
    _record(
        out,
        1,
        modules={
            "tool.cli": str(app / "tool" / "cli.py"),
            "awscli": str(site / "awscli" / "__init__.py"),
            "botocore": str(site / "awscli" / "botocore" / "__init__.py"),
            "botocore.session": str(site / "awscli" / "botocore" / "session.py"),
            "json": STDLIB + "/json/__init__.py",
            "fabfile": str(tmp_path / "check" / "fabfile.py"),  # the check's own file
            "posix": "",  # built in
            "six.moves": "",  # made at run time: no file to compile
            "zipimport": STDLIB + "/zipimport.py",  # frozen: Nuitka has it anyway
        },
        aliases={"six.moves.urllib": "six.moves.urllib_parse"},
        opened=[str(site / "awscli" / "botocore" / "data" / "endpoints.json"),
                str(site / "awscli" / "data" / "cli.json"), str(app / "tool" / "cli.py")],
        ran=[str(site / "awscli" / "botocore" / "session.py"), str(app / "tool" / "cli.py"),
             str(tmp_path / "check" / "fabfile.py")],
    )  # fmt: skip
    _record(out, 2, modules={"socket": STDLIB + "/socket.py"},
            listed=[str(site / "six")])  # fmt: skip
    stdlib = frozenset({"json", "socket", "ssl", "email", "encodings", "six", "zipimport",
                        "sqlite3", "curses"})  # fmt: skip
    found = trace.collect(out, app, site, stdlib - {"six"})
    assert found.modules == ("awscli", "botocore", "botocore.session", "json", "socket",
                             "tool.cli")  # fmt: skip
    assert found.ran == ("botocore.session", "tool.cli")  # not the check's own file
    assert found.paths == ("awscli",)  # where the hook found botocore
    assert found.data_packages == ("awscli", "botocore")
    assert found.dirs == ("six",)  # a folder the program listed, packed as it is
    # never imported and reached by no import of what is packed (encodings always kept),
    # and the submodules of kept packages nothing reaches. ssl and email were never
    # imported by the runs, but packed code imports them on paths the runs did not take
    # (io -> warnings -> tracemalloc -> pickle -> doctest -> pdb -> pydoc -> http.server ->
    # http.client -> ssl; importlib's
    # find_distributions -> importlib.metadata -> email): they stay. json/__init__.py
    # imports .decoder and .encoder, which import .scanner; nothing imports json.tool.
    assert found.exclude == ("curses", "sqlite3", "email.mime", "json.tool")
    assert found.aliases == (("six.moves.urllib", "six.moves.urllib_parse"),)


def test_apply_adds_to_what_the_recipe_says() -> None:
    found = trace.Trace(
        modules=("a", "b"), ran=("b",), aliases=(), paths=("awscli",), data_packages=("b",),
        dirs=("b/plugins",), exclude=("ssl", "email"),
    )  # fmt: skip
    given = {"trace": "include", "include_modules": "z,a", "exclude": "xml"}
    assert trace.apply(given, found) == {
        "trace": "include",
        "include_modules": "z,a,b",
        "run_modules": "b",  # the trace's alone: a module the recipe names is not run
        "include_data": "b",
        "paths": "awscli",
        "include_dirs": "b/plugins",
        "exclude": "xml",  # include mode leaves nothing out
    }
    exact = trace.apply({**given, "trace": "include-exclude"}, found)
    assert exact["exclude"] == "xml,ssl,email"


def test_only_the_outermost_listed_folders_are_packed() -> None:
    """awscli lists botocore/data and then each service's folder in it: packing
    botocore/data (recursively) holds them all, so they are not named again."""
    from buildkit.checks.trace import _outermost

    listed = {"botocore/data", "botocore/data/ec2", "botocore/data/sts", "botocore/data-x",
              "glances/plugins", "glances/plugins/cpu"}  # fmt: skip
    assert _outermost(listed) == ("botocore/data", "botocore/data-x", "glances/plugins")


def test_the_traced_interpreters_stdlib_is_the_program_s_not_buildkit_s(tmp_path: Path) -> None:
    """Traced on another interpreter (the toolchain's CPython the binary embeds), its own
    standard library is where the record says: its modules are the program's, not files a
    check handed it; without the record's roots they would all be left out."""
    app, site, out = tmp_path / "app", tmp_path / "site", tmp_path / "out"
    other = tmp_path / "toolchain" / "lib" / "python3.11"
    for folder in (app / "tool", site, other / "json", other / "lib-dynload"):
        folder.mkdir(parents=True)
    for name in ("socket.py", "json/__init__.py", "lib-dynload/_csv.so"):
        (other / name).write_text("")
    modules = {
        "tool.cli": str(app / "tool" / "cli.py"),
        "socket": str(other / "socket.py"),
        "json": str(other / "json" / "__init__.py"),
        "_csv": str(other / "lib-dynload" / "_csv.so"),
    }
    _record(out, 1, modules=modules, stdlib=[str(other), str(other / "lib-dynload")])
    found = trace.collect(out, app, site, frozenset({"socket", "json", "_csv"}))
    assert found.modules == ("_csv", "json", "socket", "tool.cli")
    _record(out, 1, modules=modules)  # an old record: buildkit's own stdlib roots
    assert trace.collect(out, app, site, frozenset({"socket", "json"})).modules == ("tool.cli",)
