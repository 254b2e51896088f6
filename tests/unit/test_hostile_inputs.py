"""Hostile recipes, lockfiles and wheels: refused with a message that names the culprit."""

from __future__ import annotations

import base64
import hashlib
import re
import zipfile
from pathlib import Path

import pytest

from buildkit import lock, targets, wheelcheck
from buildkit.build import MAX_SOURCE_FILE, stage_sources
from buildkit.errors import IntegrityError, RecipeError
from tests.conftest import ROOT
from tests.unit.test_lock import make_recipe, sample_lock
from tests.unit.test_recipe import GOOD, load, write

# --- recipes --------------------------------------------------------------------------

HOSTILE = [
    ('sources = ["src"]', 'sources = ["/etc"]', "points outside the recipe folder"),
    ('sources = ["src"]', 'sources = ["src/../../"]', "points outside the recipe folder"),
    ('name = "probe"', 'name = "probe; rm -rf ~"', "is not a valid name"),
    ('name = "probe"', 'name = "../probe"', "is not a valid name"),
    ('name = "probe"', 'name = "a/b"', "is not a valid name"),
    ('name = "probe"', 'name = "$(touch /tmp/x)"', "is not a valid name"),
    ('entry = "probe.cli:main"', 'entry = "probe.cli:main; id"', "module:function"),
    ('entry = "probe.cli:main"', 'entry = "../probe:main"', "module:function"),
    ('requirements = ["urllib3>=2"]', 'requirements = ["x; `id`"]', "not a PEP 508"),
    ("linux-amd64 = {}", "linux-amd64 = {}\nlinux-amd64 = {}", "malformed TOML"),
    ('version = "1.2.3"', 'version = "1.2.3/../../x"', "not a PEP 440 version"),
]


@pytest.mark.parametrize(("old", "new", "says"), HOSTILE, ids=[h[1] for h in HOSTILE])
def test_hostile_recipes_are_refused(tmp_path: Path, old: str, new: str, says: str) -> None:
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(RecipeError) as exc:
        load(path)
    assert exc.value.exit_code == 2 and says in str(exc.value) and str(path) in str(exc.value)


def test_a_target_named_twice_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("linux-amd64 = {}", "linux-amd64 = {}\nlinux-amd64 = {}"))
    with pytest.raises(RecipeError, match=r"recipe.toml:\d+"):
        load(path)


def test_a_symlink_out_of_the_recipe_is_not_packed(tmp_path: Path) -> None:
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("not yours\n")
    project = tmp_path / "project"
    project.mkdir()
    recipe = load(write(project, GOOD))
    (project / "src" / "probe" / "data.txt").symlink_to(secret)
    with pytest.raises(RecipeError, match=r"symbolic link to .*outside the recipe folder"):
        stage_sources(recipe, tmp_path / "stage")
    (project / "src" / "probe" / "data.txt").unlink()
    (project / "src" / "probe" / "linked").symlink_to(secret.parent, target_is_directory=True)
    with pytest.raises(RecipeError, match="linked is a symbolic link"):
        stage_sources(recipe, tmp_path / "stage2")
    (project / "src" / "probe" / "linked").unlink()
    (project / "src" / "probe" / "inside.py").symlink_to(project / "src" / "probe" / "cli.py")
    stage_sources(recipe, tmp_path / "stage3")  # a link within the recipe is fine
    assert (tmp_path / "stage3" / "probe" / "inside.py").read_text() == "def main(): pass\n"


def test_enormous_sources_are_refused_before_reading(tmp_path: Path) -> None:
    recipe = load(write(tmp_path, GOOD))
    big = tmp_path / "src" / "probe" / "dump.bin"
    with big.open("wb") as f:  # sparse: no disk used, no memory read
        f.truncate(MAX_SOURCE_FILE + 1)
    with pytest.raises(RecipeError, match=r"too big .*dump.bin, 16777217 bytes"):
        stage_sources(recipe, tmp_path / "stage")


def test_no_program_is_run_through_a_shell() -> None:
    """Every external program gets an argument list; nothing in buildkit asks a shell."""
    found = []
    for path in sorted((ROOT / "buildkit").rglob("*.py")):
        text = path.read_text()
        for pattern in (r"shell\s*=\s*True", r"os\.system\(", r"os\.popen\(", r"\bpty\.spawn"):
            found += [f"{path.name}: {pattern}" for _ in re.finditer(pattern, text)]
    assert found == []


# --- lockfiles ------------------------------------------------------------------------


def kinds(tmp_path: Path, text: str) -> list[str]:
    recipe = make_recipe(tmp_path)
    path = tmp_path / "lock.txt"
    lock.write(sample_lock(recipe), path)
    path.write_text(text.format(good=path.read_text()))
    return [p.kind for p in lock.check(recipe, targets.get("linux-amd64"), "3.11", path)]


def test_lock_with_a_url_requirement_is_refused(tmp_path: Path) -> None:
    url = "psutil @ https://evil.example/psutil-7.2.2.whl --hash=sha256:" + "c" * 64 + "\n"
    assert kinds(tmp_path, "{good}" + url) == ["edited", "duplicate", "url"]


def test_lock_with_an_unpinned_requirement_names_it(tmp_path: Path) -> None:
    recipe = make_recipe(tmp_path)
    path = tmp_path / "lock.txt"
    lock.write(sample_lock(recipe), path)
    path.write_text(path.read_text().replace("psutil==7.2.2", "psutil>=1"))
    edited, problem = lock.check(recipe, targets.get("linux-amd64"), "3.11", path)
    assert edited.kind == "edited"
    assert problem.kind == "unpinned" and "psutil>=1" in str(problem)


# --- wheels ---------------------------------------------------------------------------


def record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}\n"


def make_wheel(path: Path, members: dict[str, bytes], record: str | None = None) -> Path:
    rec_name = "demo-1.0.dist-info/RECORD"
    if record is None:
        record = "".join(record_line(n, d) for n, d in members.items()) + f"{rec_name},,\n"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        zf.writestr(rec_name, record)
    return path


GOOD_MEMBERS = {"demo/__init__.py": b"x = 1\n", "demo-1.0.dist-info/METADATA": b"Name: demo\n"}


def test_a_sound_wheel_passes(tmp_path: Path) -> None:
    wheelcheck.check(make_wheel(tmp_path / "demo-1.0-py3-none-any.whl", GOOD_MEMBERS), "demo")


@pytest.mark.parametrize(
    ("members", "record", "says"),
    [
        ({**GOOD_MEMBERS, "../../etc/cron.d/x": b"* * * * * id\n"}, None, "a '..' part"),
        ({**GOOD_MEMBERS, "/usr/bin/x": b"#!/bin/sh\n"}, None, "an absolute path"),
        ({**GOOD_MEMBERS, "demo\\..\\..\\x": b"x"}, None, "a backslash"),
        (
            GOOD_MEMBERS,
            record_line("demo/__init__.py", b"x = 2\n")
            + record_line("demo-1.0.dist-info/METADATA", b"Name: demo\n"),
            "'demo/__init__.py' whose bytes do not match its RECORD",
        ),
        (
            GOOD_MEMBERS,
            record_line("demo-1.0.dist-info/METADATA", b"Name: demo\n"),
            "'demo/__init__.py' that its RECORD does not list",
        ),
        (
            GOOD_MEMBERS,
            "".join(record_line(n, d) for n, d in GOOD_MEMBERS.items())
            + record_line("demo/gone.py", b""),
            "lists 'demo/gone.py' in RECORD, but has no such member",
        ),
    ],
)
def test_hostile_wheels_are_refused(
    tmp_path: Path, members: dict[str, bytes], record: str | None, says: str
) -> None:
    wheel = make_wheel(tmp_path / "demo-1.0-py3-none-any.whl", members, record)
    with pytest.raises(IntegrityError) as exc:
        wheelcheck.check(wheel, "demo==1.0")
    assert exc.value.exit_code == 3
    assert str(exc.value).startswith("demo==1.0: the wheel demo-1.0-py3-none-any.whl")
    assert says in str(exc.value)


def test_not_a_zip_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "demo-1.0-py3-none-any.whl"
    bad.write_bytes(b"<html>503</html>")
    with pytest.raises(IntegrityError, match=r"demo: the wheel .* is not a readable zip"):
        wheelcheck.check(bad, "demo")
