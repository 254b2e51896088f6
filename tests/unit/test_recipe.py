from __future__ import annotations

from pathlib import Path

import pytest

from buildkit import recipe as recipe_mod
from buildkit import targets
from buildkit.backends import format_options, registry
from buildkit.cli import main
from buildkit.errors import InputError, RecipeError
from tests.conftest import RECIPES, SAMPLES

GOOD = """\
[recipe]
name = "probe"
version = "1.2.3"
entry = "probe.cli:main"
sources = ["src"]
requirements = ["urllib3>=2"]
python = "3.11"

[targets]
linux-amd64 = {}
alpine-arm64 = { python = "3.12" }

[formats]
pex = {}
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "src" / "probe").mkdir(parents=True, exist_ok=True)
    (tmp_path / "src" / "probe" / "cli.py").write_text("def main(): pass\n")
    path = tmp_path / "recipe.toml"
    path.write_text(text)
    return path


def load(path: Path) -> recipe_mod.Recipe:
    return recipe_mod.load(path, formats=format_options(), targets=targets.all_targets())


@pytest.mark.parametrize("name", SAMPLES)
def test_samples_load(name: str) -> None:
    r = load(RECIPES / name)
    assert r.name == name
    assert {t.name for t in r.targets} == set(targets.all_targets())
    assert r.formats == ("pex", "shiv", "nuitka")


def test_good_recipe_and_overrides(tmp_path: Path) -> None:
    r = load(write(tmp_path, GOOD))
    assert [(t.name, t.python) for t in r.targets] == [
        ("linux-amd64", "3.11"),
        ("alpine-arm64", "3.12"),
    ]
    assert r.entry_module == "probe.cli"
    assert r.requirements == ("urllib3>=2",)


def test_module_list_option(tmp_path: Path) -> None:
    text = GOOD.replace("pex = {}", 'nuitka = { exclude = ["ssl", "xml.dom", "ssl"] }')
    r = load(write(tmp_path, text))
    assert r.options("nuitka") == {"exclude": "ssl,xml.dom"}


def test_defaults_every_target_and_format(tmp_path: Path) -> None:
    text = GOOD.split("[targets]", maxsplit=1)[0].replace('python = "3.11"\n', "")
    r = load(write(tmp_path, text))
    assert [t.name for t in r.targets] == list(targets.all_targets())
    assert [t.python for t in r.targets] == [t.python for t in targets.all_targets().values()]
    assert r.formats == tuple(registry())


BAD = [
    # (replace this, with that, expected fragments of the message)
    ('name = "probe"', 'name = "probe', ["malformed TOML", "recipe.toml:2"]),
    (
        'entry = "probe.cli:main"',
        'entry = "probe.cli:main"\nentrx = 1',
        ["[recipe].entrx", ":5", "did you mean 'entry'"],
    ),
    (
        'sources = ["src"]',
        'sources = "src"',
        ["[recipe].sources", ":5", "must be a list of strings, not a string"],
    ),
    ('version = "1.2.3"', "version = 1", ["[recipe].version", "must be a string, not an integer"]),
    (
        "linux-amd64 = {}",
        "linux-amd46 = {}",
        ["[targets].linux-amd46", "unknown target", "did you mean 'linux-amd64'"],
    ),
    ("pex = {}", "pexx = {}", ["[formats].pexx", "unknown format", "did you mean 'pex'"]),
    (
        'entry = "probe.cli:main"',
        'entry = "probe.main:main"',
        ["[recipe].entry", "module 'probe.main' is not in the sources"],
    ),
    ('entry = "probe.cli:main"', 'entry = "probe.cli"', ["[recipe].entry", "module:function"]),
    ('sources = ["src"]', 'sources = ["../elsewhere"]', ["points outside the recipe folder"]),
    (
        'requirements = ["urllib3>=2"]',
        'requirements = ["urllib3 >>= 2"]',
        ["not a PEP 508 requirement"],
    ),
    ('python = "3.11"', 'python = "3.9"', ["[recipe].python", "3.11 or newer"]),
    ("[formats]", "[format]", ["[format]", "unknown key", "did you mean 'formats'"]),
    (
        'alpine-arm64 = { python = "3.12" }',
        'alpine-arm64 = { pyton = "3.12" }',
        ["[targets].alpine-arm64.pyton", "did you mean 'python'"],
    ),
    (
        'sources = ["src"]',
        'sources = ["src"]\nnative = ["src"]',
        ["[recipe].native", "is not a package folder (no pyproject.toml"],
    ),
    (
        'sources = ["src"]',
        'sources = ["src"]\nnative = ["../pkg"]',
        ["[recipe].native", "points outside the recipe folder"],
    ),
    (
        "pex = {}",
        'nuitka = { mode = "folder" }',
        ["[formats].nuitka.mode", "'folder' is not one of onefile, standalone"],
    ),
    (
        "pex = {}",
        'nuitka = { compress = "xz" }',
        ["[formats].nuitka.compress", "'xz' is not one of none, zstd"],
    ),
    (
        "pex = {}",
        'nuitka = { exclude = "ssl" }',
        ["[formats].nuitka.exclude", ":14", "must be a list of strings, not a string"],
    ),
    (
        "pex = {}",
        'nuitka = { exclude = ["ssl", "../evil; rm -rf /"] }',
        ["[formats].nuitka.exclude[1]", "is not a Python module name"],
    ),
    (
        "pex = {}",
        'pex = {}\n[hardening]\nrequire = []\nseccomp = "enforec"',
        ["[hardening].seccomp", "off, record, enforce", "did you mean 'enforce'"],
    ),
    (
        "pex = {}",
        'pex = {}\n[hardening]\nrequire = []\nseccomp_allow = ["fork", "rm -rf /"]',
        ["[hardening].seccomp_allow", "'rm -rf /' is not a system call name"],
    ),
]


@pytest.mark.parametrize(("old", "new", "fragments"), BAD, ids=[b[2][0] for b in BAD])
def test_bad_recipes(tmp_path: Path, old: str, new: str, fragments: list[str]) -> None:
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(RecipeError) as exc:
        load(path)
    assert exc.value.exit_code == 2
    message = str(exc.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize(("old", "new", "fragments"), BAD[:7], ids=[b[2][0] for b in BAD[:7]])
def test_cli_bad_recipe_exit_2_dist_unchanged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, fragments: list[str]
) -> None:
    path = write(tmp_path, GOOD.replace(old, new, 1))
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "keep.txt").write_text("earlier release file\n")
    before = sorted((p.name, p.read_bytes()) for p in dist.iterdir())
    code = main(["build", str(path), "--out", str(dist), "--cache-dir", str(tmp_path / "c")])
    assert code == 2
    err = capsys.readouterr().err
    assert "error:" in err and fragments[0] in err
    assert len(err.strip().splitlines()) <= 20  # one screen
    assert sorted((p.name, p.read_bytes()) for p in dist.iterdir()) == before
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").rglob("*.pex"))


def test_missing_recipe_path(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="no recipe here"):
        load(tmp_path / "nope")


def test_waiver_expiry_must_be_date(tmp_path: Path) -> None:
    text = (
        GOOD
        + '\n[hardening]\nrequire = ["canary"]\n[[hardening.waivers]]\npath = "x"\nreason = "r"\nexpires = "soon"\n'
    )
    with pytest.raises(RecipeError, match="expires: must be a date"):
        load(write(tmp_path, text))


def test_recipe_python_overriding_a_targets_default_is_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = GOOD.replace('alpine-arm64 = { python = "3.12" }', "alpine-arm64 = {}")
    r = load(write(tmp_path, text))
    assert r.target("alpine-arm64").python == "3.11"
    (record,) = [m for m in caplog.messages if "also applies" in m]
    assert "[recipe].python = '3.11' also applies to alpine-arm64" in record
    assert "own default is 3.12" in record and "[targets].alpine-arm64.python" in record
    caplog.clear()
    load(write(tmp_path, GOOD))  # said per target: nothing to say
    assert not [m for m in caplog.messages if "also applies" in m]


@pytest.mark.parametrize(
    ("given", "meant"),
    [("linux-x86_64", "linux-amd64"), ("macos-aarch64", "darwin-arm64"),
     ("alpine-aarch64", "alpine-arm64"), ("linux-aarch64", "linux-arm64")],
)  # fmt: skip
def test_target_aliases_are_suggested(tmp_path: Path, given: str, meant: str) -> None:
    with pytest.raises(RecipeError, match=f"did you mean '{meant}'"):
        load(write(tmp_path, GOOD.replace("linux-amd64 = {}", f"{given} = {{}}")))
    with pytest.raises(InputError, match=f"unknown target '{given}'; did you mean '{meant}'"):
        targets.get(given)


@pytest.mark.parametrize("bad", ["../etc", "/abs/plugins", "glances/../../x", "a//b", ""])
def test_nuitka_include_dirs_must_stay_inside_packages(tmp_path: Path, bad: str) -> None:
    text = GOOD.replace("pex = {}", f'nuitka = {{ include_dirs = ["glances/plugins", "{bad}"] }}')
    with pytest.raises(RecipeError, match=r"include_dirs\[1\]: .* is not a relative folder path"):
        load(write(tmp_path, text))
    good = load(write(tmp_path, text.replace(f', "{bad}"', "")))
    assert good.options("nuitka") == {"include_dirs": "glances/plugins"}


def test_a_compressed_standalone_folder_is_refused_naming_the_key() -> None:
    from buildkit.backends.nuitka import NuitkaBackend

    with pytest.raises(InputError, match=r"\[formats\]\.nuitka\.compress = 'zstd' applies to"):
        NuitkaBackend().settings(
            targets.get("linux-amd64"), {"mode": "standalone", "compress": "zstd"}, None
        )
