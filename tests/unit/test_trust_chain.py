"""Issue 16, "close the holes in the trust chain": one test (or more) per item, named
``test_itemNN_...``; each failed on the code before its fix."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from buildkit import build, closure, lock, targets, wheelcheck
from buildkit.errors import IntegrityError, LockError, RecipeError
from buildkit.wheelhouse import Wheel
from tests.unit.test_hostile_inputs import GOOD_MEMBERS, make_wheel, record_line
from tests.unit.test_lock import H1, H2, make_recipe, sample_lock
from tests.unit.test_recipe import GOOD, load, write

AMD64 = targets.get("linux-amd64")

# --- item 1: option lines in a lock ------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        "-r other.txt",
        "--requirement=other.txt",
        "-c constraints.txt",
        "--find-links /tmp/evil",
        "-f /tmp/evil",
        "--index-url https://evil.example/simple",
        "-i https://evil.example/simple",
        "--extra-index-url https://evil.example/simple",
        "--trusted-host evil.example",
        "-e ./evil",
        "--editable=git+https://evil.example/x.git#egg=x",
        "--no-binary :all:",
        "--pre",
        "--hash=sha256:" + "c" * 64,
    ],
)
def test_item01_option_lines_are_refused_naming_file_and_line(tmp_path: Path, line: str) -> None:
    recipe = make_recipe(tmp_path)
    path = tmp_path / "lock.txt"
    lock.write(sample_lock(recipe), path)
    good = path.read_text()
    path.write_text(good + line + "\n")
    with pytest.raises(LockError) as exc:
        lock.check(recipe, AMD64, "3.11", path)
    number = len(good.splitlines()) + 1
    assert exc.value.exit_code == 2
    assert f"{path}:{number}:" in exc.value.message
    assert "refused" in exc.value.message


@pytest.mark.parametrize(
    "suffix", [" --global-option=--evil", " --config-settings x=y", " -e .", " --install-option=x"]
)
def test_item01_options_after_a_pin_are_refused(tmp_path: Path, suffix: str) -> None:
    text = f"psutil==7.2.2{suffix} \\\n    --hash=sha256:{H1}\n"
    with pytest.raises(LockError, match=r"lock\.txt:1: .*option"):
        lock.parse(text, tmp_path / "lock.txt")


def test_item01_tools_get_only_the_parsed_pins(tmp_path: Path) -> None:
    """The requirements file a backend reads is rebuilt from the pins: name, version,
    marker and the hash of the one wheel chosen; extras and comments do not survive."""
    text = (
        "# recipe: demo\n"
        f"psutil[test]==7.2.2 ; sys_platform == 'linux' \\\n    --hash=sha256:{H1} \\\n"
        f"    --hash=sha256:{H2}  # via the recipe\n"
    )
    locked = lock.parse(text, tmp_path / "lock.txt")
    chosen = Wheel(name="psutil", version="7.2.2", filename="p.whl", sha256=H2, path=tmp_path)
    own = Wheel(name="logscan", version="1.0", filename="l.whl", sha256=H1, path=tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    out = build._requirements(locked, (chosen,), (own,), work)
    assert out.read_text() == (
        f'psutil==7.2.2 ; sys_platform == "linux" --hash=sha256:{H2}\n'
        f"logscan==1.0 --hash=sha256:{H1}\n"
    )
    assert out.parent == work


# --- item 2: the pins against the recipe -------------------------------------------------


def kinds_and_details(recipe_reqs: tuple[str, ...], pins: str, tmp_path: Path) -> list[str]:
    recipe = make_recipe(tmp_path, recipe_reqs)
    locked = lock.parse(pins, tmp_path / "x.txt")
    body = lock.Lockfile(
        recipe="demo",
        target="linux-amd64",
        python="3.11",
        engine="uv 0",
        inputs_digest=lock.inputs_digest(recipe.requirements, AMD64, "3.11"),
        requirements=locked.requirements,
    )
    path = tmp_path / "lock.txt"
    lock.write(body, path)  # a consistent header: only the pins are judged
    return [f"{p.kind}: {p.detail}" for p in lock.check(recipe, AMD64, "3.11", path)]


def test_item02_a_pin_that_violates_the_recipe_is_stale(tmp_path: Path) -> None:
    found = kinds_and_details(
        ("urllib3>=2,<3",), f"urllib3==1.26.20 --hash=sha256:{H1}\n", tmp_path
    )
    assert found == ["stale: line 9: urllib3==1.26.20 does not satisfy the recipe's urllib3>=2,<3"]


def test_item02_a_missing_package_and_no_pins_at_all_are_stale(tmp_path: Path) -> None:
    found = kinds_and_details(
        ("urllib3>=2", "psutil>=6"), f"urllib3==2.8.0 --hash=sha256:{H1}\n", tmp_path
    )
    assert found == ["stale: psutil is required by the recipe (psutil>=6) but not pinned"]
    assert kinds_and_details(("urllib3>=2",), "", tmp_path) == [
        "stale: urllib3 is required by the recipe (urllib3>=2) but not pinned"
    ]


def test_item02_a_requirement_whose_marker_excludes_the_target_need_not_be_pinned(
    tmp_path: Path,
) -> None:
    reqs = ("urllib3>=2", "pywin32>=300; sys_platform == 'win32'")
    assert kinds_and_details(reqs, f"urllib3==2.8.0 --hash=sha256:{H1}\n", tmp_path) == []


def test_item02_any_hand_edit_of_the_pins_is_caught(tmp_path: Path) -> None:
    recipe = make_recipe(tmp_path)
    path = tmp_path / "lock.txt"
    lock.write(sample_lock(recipe), path)
    good = path.read_text()
    assert lock.check(recipe, AMD64, "3.11", path) == []
    path.write_text(good.replace(H2, "c" * 64))  # one hash swapped
    assert [p.kind for p in lock.check(recipe, AMD64, "3.11", path)] == ["edited"]
    path.write_text(good + f"evil==1.0 --hash=sha256:{'d' * 64}\n")  # a pin added
    assert [p.kind for p in lock.check(recipe, AMD64, "3.11", path)] == ["edited"]
    old = "".join(line for line in good.splitlines(True) if "pins-digest" not in line)
    path.write_text(old)  # a lock written before the pins were recorded
    (problem,) = lock.check(recipe, AMD64, "3.11", path)
    assert problem.kind == "stale" and "pins-digest" in problem.detail


def test_item02_the_pins_are_part_of_the_action_key() -> None:
    a = lock.pins_digest(sample_lock(make_recipe(Path("/r"))).requirements)
    other = lock.LockedRequirement(
        requirement="psutil==7.2.2", name="psutil", version="7.2.2", hashes=(H1,)
    )
    b = lock.pins_digest((other,))
    plan = build.Plan(target=AMD64, python="3.11", backend=build.registry()["pex"], options={})
    from buildkit.buildinfo import BuildInfo

    info = BuildInfo(
        recipe="demo", version="1.0", target="linux-amd64", format="pex", python="3.11",
        entry="demo:main", lock_digest="sha256:0", sources_digest="sha256:0", wheels=(),
        native=(), toolkit="0", tools=(), settings=(),
    )  # fmt: skip
    assert build.action_key(plan, info, a) != build.action_key(plan, info, b)


def dist(name: str, version: str, *requires: str) -> closure.Dist:
    return closure.Dist(name=name, version=version, requires=requires)


ENV = AMD64.marker_environment("3.11")


def test_item02_closure_finds_stray_missing_and_violated_pins() -> None:
    pinned = {
        "requests": dist("requests", "2.32.0", "urllib3<3,>=1.21", "idna<4,>=2.5"),
        "urllib3": dist("urllib3", "1.26.20"),
        "idna": dist("idna", "3.7"),
        "evil": dist("evil", "1.0"),
    }
    assert closure.problems(roots=["requests>=2"], own=[], pinned=pinned, env=ENV) == [
        "evil==1.0 is pinned, but neither the recipe nor any pinned package requires it"
    ]
    del pinned["idna"]
    pinned["charset-normalizer"] = dist("charset-normalizer", "3.0")
    pinned["requests"] = dist("requests", "2.32.0", "urllib3>=2", "idna", "charset-normalizer")
    found = closure.problems(roots=["requests>=2"], own=[], pinned=pinned, env=ENV)
    assert sorted(found) == [
        "evil==1.0 is pinned, but neither the recipe nor any pinned package requires it",
        "idna is required by requests 2.32.0 (idna) but not pinned",
        "urllib3==1.26.20 does not satisfy requests 2.32.0's requirement urllib3>=2",
    ]


def test_item02_closure_follows_extras_markers_and_native_packages() -> None:
    pinned = {
        "urllib3": dist(
            "urllib3", "2.8.0", "pysocks>=1.5; extra == 'socks'", "brotli; extra == 'brotli'"
        ),
        "pysocks": dist("pysocks", "1.7.1"),
        "colorama": dist("colorama", "0.4.6"),
    }
    own = [dist("logscan", "1.0", "colorama; sys_platform == 'linux'", "pywin32; os_name == 'nt'")]
    assert closure.problems(roots=["urllib3[socks]>=2"], own=own, pinned=pinned, env=ENV) == []
    # without the extra, pysocks is a stray pin
    assert closure.problems(roots=["urllib3>=2"], own=own, pinned=pinned, env=ENV) == [
        "pysocks==1.7.1 is pinned, but neither the recipe nor any pinned package requires it"
    ]


# --- item 7: recipe names and versions ------------------------------------------------------

BAD_NAMES_AND_VERSIONS = [
    ('name = "probe"', 'name = "probe\\n"', "is not a valid name"),
    ('name = "probe"', 'name = "probe\\t"', "is not a valid name"),
    ('name = "probe"', 'name = "pro be"', "is not a valid name"),
    ('name = "probe"', 'name = "probe\\u001b[2J"', "is not a valid name"),
    ('version = "1.2.3"', 'version = " 1.2.3"', "not a PEP 440 version in its normal form"),
    ('version = "1.2.3"', 'version = "1.2.3\\n"', "not a PEP 440 version in its normal form"),
    ('version = "1.2.3"', 'version = "1.2.3 "', "not a PEP 440 version in its normal form"),
    ('version = "1.2.3"', 'version = "v1.2.3"', "write it as '1.2.3'"),
    ('version = "1.2.3"', 'version = "1.2.3-ALPHA"', "write it as '1.2.3a0'"),
    ('version = "1.2.3"', 'version = "1!1.2.3"', "not a PEP 440 version in its normal form"),
    ('version = "1.2.3"', 'version = "1.2.3\\u0007"', "not a PEP 440 version"),
]


@pytest.mark.parametrize(
    ("old", "new", "says"), BAD_NAMES_AND_VERSIONS, ids=[b[1] for b in BAD_NAMES_AND_VERSIONS]
)
def test_item07_names_and_versions_with_whitespace_or_controls_are_refused(
    tmp_path: Path, old: str, new: str, says: str
) -> None:
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(RecipeError) as exc:
        load(path)
    assert exc.value.exit_code == 2
    assert says in f"{exc.value} {exc.value.hint}" and str(path) in str(exc.value)


def test_item07_normal_versions_pass(tmp_path: Path) -> None:
    for version in ("1.2.3", "2.1rc1", "1.0.post2", "1.0.dev3", "1.0+local.7"):
        assert load(write(tmp_path, GOOD.replace('"1.2.3"', f'"{version}"', 1))).version == version


# --- item 16: vendored metadata inside a wheel ----------------------------------------------


def test_item16_vendored_dist_info_records_are_plain_members(tmp_path: Path) -> None:
    vendored = {
        **GOOD_MEMBERS,
        "demo/_vendor/six-1.0.dist-info/RECORD": b"six.py,,\n",
        "demo/_vendor/six-1.0.dist-info/METADATA": b"Name: six\n",
    }
    wheelcheck.check(make_wheel(tmp_path / "demo-1.0-py3-none-any.whl", vendored), "demo")
    # a vendored RECORD is still a member its wheel's RECORD must list with its hash
    wheel = make_wheel(
        tmp_path / "demo-1.0-py3-none-any.whl",
        vendored,
        "".join(record_line(n, d) for n, d in GOOD_MEMBERS.items()),
    )
    with pytest.raises(IntegrityError, match=r"_vendor/six-1\.0\.dist-info/\w+' that its RECORD"):
        wheelcheck.check(wheel, "demo")


def test_item16_two_top_level_records_are_still_refused(tmp_path: Path) -> None:
    twice = {**GOOD_MEMBERS, "evil-1.0.dist-info/RECORD": b""}
    with pytest.raises(IntegrityError, match=r"has 2 top-level \.dist-info/RECORD files"):
        wheelcheck.check(make_wheel(tmp_path / "demo-1.0-py3-none-any.whl", twice), "demo")


# --- item 9: repro --perturb stays inside the recipe ----------------------------------------


@pytest.mark.parametrize("how", ["absolute", "dotdot", "symlink"])
def test_item09_perturb_never_edits_a_file_outside_the_recipe(tmp_path: Path, how: str) -> None:
    from buildkit import repro
    from buildkit.cache import Cache
    from buildkit.errors import InputError

    recipe = make_recipe(tmp_path)
    (recipe.root / "src").mkdir(parents=True)
    precious = tmp_path / "precious.py"
    precious.write_text("keep me\n")
    arg = {"absolute": str(precious), "dotdot": "../precious.py", "symlink": "src/link.py"}[how]
    (recipe.root / "src" / "link.py").symlink_to(precious)
    with pytest.raises(InputError, match="not a file inside the recipe folder"):
        repro.repro(
            recipe, targets=[], formats=[], out=tmp_path / "out",
            cache=Cache(root=tmp_path / "cache"), perturb=arg,
        )  # fmt: skip
    assert precious.read_text() == "keep me\n"


# --- item 3: which lock folder ------------------------------------------------------------


def test_item03_the_lock_folder_does_not_depend_on_how_the_recipe_is_typed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    (project / "recipes" / "demo").mkdir(parents=True)
    (project / "pyproject.toml").write_text("")
    absolute = make_recipe(tmp_path)
    absolute = dataclasses.replace(absolute, path=project / "recipes" / "demo" / "recipe.toml")
    monkeypatch.chdir(project / "recipes" / "demo")
    relative = dataclasses.replace(absolute, path=Path("recipe.toml"))
    assert lock.lock_dir(relative) == lock.lock_dir(absolute) == project / "lockfiles" / "demo"


def test_item03_a_marker_in_a_folder_others_can_write_is_not_followed(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    (shared / "team" / "demo").mkdir(parents=True)
    (shared / "pyproject.toml").write_text("")  # planted by anyone who can write there
    shared.chmod(0o1777)
    recipe = dataclasses.replace(
        make_recipe(tmp_path), path=shared / "team" / "demo" / "recipe.toml"
    )
    assert lock.lock_dir(recipe) == shared / "team" / "demo" / "lockfiles" / "demo"


def test_item03_a_git_work_tree_bounds_the_search(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("")  # outside the work tree
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    (tmp_path / "repo" / "demo").mkdir()
    recipe = dataclasses.replace(make_recipe(tmp_path), path=tmp_path / "repo" / "demo" / "r.toml")
    assert lock.lock_dir(recipe) == tmp_path / "repo" / "demo" / "lockfiles" / "demo"


@pytest.mark.parametrize("how", ["world-writable", "foreign-owner"])
def test_item03_a_lock_folder_others_control_is_refused(tmp_path: Path, how: str) -> None:
    recipe = make_recipe(tmp_path)
    recipe.root.mkdir(parents=True)
    (tmp_path / "pyproject.toml").write_text("")
    locks = tmp_path / "lockfiles" / "demo"
    locks.mkdir(parents=True)
    if how == "world-writable":
        locks.chmod(0o777)
    else:
        os.chown(locks, 1000, 1000)
    with pytest.raises(LockError, match="locks there could be swapped") as exc:
        lock.lock_dir(recipe)
    assert exc.value.exit_code == 2 and str(locks) in exc.value.message
