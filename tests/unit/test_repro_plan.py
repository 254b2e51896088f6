"""What `buildkit repro` varies and how it reports, without building anything."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from buildkit import repro
from buildkit.cache import Cache
from buildkit.errors import CheckFailed


@pytest.mark.parametrize("uts", [True, False])
def test_every_condition_is_varied_and_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uts: bool
) -> None:
    monkeypatch.setattr(repro, "_uts_namespace_works", lambda: uts)
    runs, conditions = repro._plan_runs(
        tmp_path, 3, Cache(root=tmp_path / "cache"), hide_compilers="kept"
    )
    assert [r.index for r in runs] == [1, 2, 3]
    first, second, third = runs
    assert len({r.recipe for r in runs}) == len({r.out for r in runs}) == 3
    assert " " in str(second.recipe)  # a path with a space in it
    assert first.umask == 0o022 and second.umask == third.umask == 0o002
    for key in ("TZ", "LC_ALL", "HOME", "PYTHONHASHSEED"):
        assert first.env[key] != second.env[key], key
    assert second.env["PYTHONHASHSEED"] != third.env["PYTHONHASHSEED"]
    assert "CFLAGS" in second.env and "CFLAGS" not in first.env
    assert second.reverse_order and not first.reverse_order
    names = {c.name for c in conditions}
    assert {
        "recipe path", "output path", "working directory", "TZ", "umask",
        "locale (LC_ALL)", "HOME", "environment noise", "file creation order", "CPUs",
        "hostname", "tool caches",
    } <= names  # fmt: skip
    for c in conditions:
        assert len(c.values) == 3
        unvaried = len(set(c.values)) == 1
        assert not unvaried or c.note, f"{c.name} not varied and no note says why"
    if len(os.sched_getaffinity(0)) > 1:
        assert second.prefix[:2] == ("taskset", "-c")
    assert ("unshare" in second.prefix) is uts and "unshare" not in first.prefix
    hostname = next(c for c in conditions if c.name == "hostname")
    assert bool(hostname.note) is not uts


def test_later_builds_hide_the_host_compilers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A recipe with no native package of its own: the later builds run where gcc and cc
    are bound to false, so a native binary that needed the host's compiler fails them."""
    monkeypatch.setattr(repro, "_uts_namespace_works", lambda: False)
    monkeypatch.setattr(repro.os, "geteuid", lambda: 0)
    runs, conditions = repro._plan_runs(
        tmp_path, 2, Cache(root=tmp_path / "cache"), hide_compilers=None
    )
    first, second = runs
    hidden = next(c for c in conditions if c.name == "host C compilers")
    gcc = repro.shutil.which("gcc")
    if gcc is None:
        assert hidden.note and "unshare" not in second.prefix
        return
    assert hidden.values == ("present", "hidden (bound to false)") and not hidden.note
    assert "unshare" not in first.prefix and "--mount" in second.prefix
    script = next(p for p in second.prefix if p.startswith("mount --bind"))
    assert f"mount --bind {repro.shutil.which('false')} '{Path(gcc).resolve()}'" in script
    runs, conditions = repro._plan_runs(
        tmp_path / "native", 2, Cache(root=tmp_path / "cache"), hide_compilers="kept"
    )
    hidden = next(c for c in conditions if c.name == "host C compilers")
    assert "kept" in hidden.note and "--mount" not in runs[1].prefix


def test_copy_order_is_reversed_for_later_builds(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "pkg").mkdir(parents=True)
    for name in ("a.py", "b.py", "c.py"):
        (src / "pkg" / name).write_text(name)
    (src / "__pycache__").mkdir()
    repro._copy_tree(src, tmp_path / "one", reverse=False)
    repro._copy_tree(src, tmp_path / "two", reverse=True)
    for dest in ("one", "two"):
        assert sorted(p.name for p in (tmp_path / dest / "pkg").iterdir()) == [
            "a.py", "b.py", "c.py"
        ]  # fmt: skip
        assert not (tmp_path / dest / "__pycache__").exists()


def test_check_names_the_differing_files(tmp_path: Path) -> None:
    same = repro.FileResult(name="SHA256SUMS", digests=("a", "a"))
    differs = repro.FileResult(
        name="x.pex", digests=("a", "b"), report=tmp_path / "x.pex.diffoscope.txt"
    )
    missing = repro.FileResult(name="y.pyz", digests=("a", None))
    ok = repro.ReproResult(recipe="r", out=tmp_path, conditions=(), files=(same,))
    repro.check(ok)
    bad = repro.ReproResult(recipe="r", out=tmp_path, conditions=(), files=(same, differs, missing))
    with pytest.raises(CheckFailed) as exc:
        repro.check(bad)
    assert "2 file(s) differ" in str(exc.value) and "x.pex, y.pyz" in str(exc.value)
    assert "x.pex.diffoscope.txt" in (exc.value.hint or "")
    assert not bad.identical and ok.identical


def test_later_builds_run_buildkit_under_another_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The later builds' `buildkit build` runs on the interpreter given (a toolkit venv
    of another Python version), and the result records both versions; without one, the
    condition says why it was not varied."""
    import platform
    import sys

    monkeypatch.setattr(repro, "_uts_namespace_works", lambda: False)
    other = tmp_path / "venv" / "bin" / "python"
    runs, conditions = repro._plan_runs(
        tmp_path, 3, Cache(root=tmp_path / "cache"), hide_compilers="kept",
        python=(other, "3.12.1"),
    )  # fmt: skip
    assert [r.python for r in runs] == [Path(sys.executable), other, other]
    varied = next(c for c in conditions if c.name == "Python running buildkit")
    mine = platform.python_version()
    assert varied.values == (mine, "3.12.1 (a toolkit venv of it)", "3.12.1 (a toolkit venv of it)")
    assert not varied.note
    runs, conditions = repro._plan_runs(
        tmp_path / "again", 2, Cache(root=tmp_path / "cache"), hide_compilers="kept"
    )
    assert {r.python for r in runs} == {Path(sys.executable)}
    same = next(c for c in conditions if c.name == "Python running buildkit")
    assert same.values == (mine, mine) and "not varied" in same.note
