"""The command line's shape: every command parses, and a BuildRequest's command line
parses back into the same request."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from buildkit import cli
from buildkit.cli.common import texts
from buildkit.request import BuildRequest

# BuildRequest field → the name argparse gives it in `buildkit build`.
DEST = {"targets": "target", "formats": "format"}


def test_build_request_argv_parses_back_into_every_field() -> None:
    req = BuildRequest(
        recipe=Path("/r/recipe"),
        out=Path("/o"),
        targets=("linux-amd64", "linux-arm64"),
        formats=("pex", "nuitka"),
        cache_dir=Path("/c"),
        lockfiles=Path("/l"),
        wheelhouse=Path("/w"),
        offline=True,
        verbose=True,
        json=True,
    )
    argv = req.to_argv("/py", prefix=["taskset", "-c", "0"])
    assert argv[:7] == ["taskset", "-c", "0", "/py", "-m", "buildkit", "build"]
    args = cli._parse(argv[6:])
    for field in dataclasses.fields(BuildRequest):
        value = getattr(args, DEST.get(field.name, field.name))
        want = getattr(req, field.name)
        assert (tuple(value) if isinstance(want, tuple) else value) == want, field.name


def test_build_request_defaults_add_nothing() -> None:
    argv = BuildRequest(recipe=Path("r"), out=Path("dist")).to_argv("py")
    assert argv == ["py", "-m", "buildkit", "build", "r", "--out", "dist"]


@pytest.mark.parametrize("name", list(cli.COMMANDS))
def test_every_command_has_help_and_parses_its_help(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        cli._parse([name, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: buildkit {name}")
    assert texts()[name]["description"].split()[0] in out


def test_every_command_and_step_has_help_texts() -> None:
    assert list(texts()) == list(cli.COMMANDS)
    for name, entry in texts().items():
        steps = {k: v for k, v in entry.items() if isinstance(v, dict)}
        assert entry["help"] and entry["description"], name
        assert all(s["help"] and s["description"] for s in steps.values()), name
    assert set(texts()["host"]) - {"help", "description"} == {"create", "status", "remove"}
    assert set(texts()["release"]) - {"help", "description"} == {"assemble", "sign"}
    assert set(texts()["toolchain"]) - {"help", "description"} == {"build", "status"}


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli._parse(["bulid", "recipes/portcheck"])
    assert exc.value.code == 2
    assert "invalid choice: 'bulid'" in capsys.readouterr().err


def test_foreign_native_target_refused_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Nuitka binary for a target this host cannot build is refused before anything is
    fetched, built or written, and the message says where it can be built."""
    recipe = Path(__file__).resolve().parents[2] / "recipes" / "portcheck"
    code = cli.main(
        ["build", str(recipe), "--target", "darwin-arm64", "--format", "nuitka",
         "--out", str(tmp_path / "d"), "--cache-dir", str(tmp_path / "c")]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert "build darwin-arm64 nuitka binaries on a macOS arm64 host" in err
    assert "darwin-arm64 job" in err
    assert not (tmp_path / "d").exists() and not (tmp_path / "c").exists()
