"""The recipe's [[checks]]: parsing and refusals, fixtures, judging, records."""

from __future__ import annotations

import json
import re
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from buildkit.checks import fixtures, pythons
from buildkit.checks.model import DEFAULT, Check
from buildkit.checks.run import ArtifactChecks, Outcome, Run, describe, judge, summary
from buildkit.errors import IntegrityError, RecipeError
from buildkit.release import provenance
from buildkit.release.manifest import ArtifactRecord
from tests.conftest import RECIPES, SAMPLES
from tests.unit.test_recipe import GOOD, load, write

PORT = """
[[checks]]
name = "open port"
serve = "tcp"
args = ["127.0.0.1:{port}", "--timeout", "5"]
stdout_regex = '^open\\s'

[[checks]]
args = ["127.0.0.1:{closed_port}"]
exit = 1
stdout = "closed"
env = { LANG = "C" }
files = { "conf/app.ini" = "x=1\\n" }
stdin = "hello"
timeout = 20
"""


def test_checks_parse(tmp_path: Path) -> None:
    r = load(write(tmp_path, GOOD + PORT))
    first, second = r.checks
    assert first == Check(
        name="open port",
        args=("127.0.0.1:{port}", "--timeout", "5"),
        serve="tcp",
        stdout_regex="^open\\s",
    )
    assert second.name == "127.0.0.1:{closed_port}"  # named after its arguments
    assert (second.exit, second.stdout, second.timeout) == (1, "closed", 20.0)
    assert second.env == (("LANG", "C"),) and second.stdin == "hello"
    assert second.files == (("conf/app.ini", "x=1\n"),)
    assert second.expected() == "exit 1, stdout containing 'closed'"


def test_no_checks_means_help_must_work(tmp_path: Path) -> None:
    assert load(write(tmp_path, GOOD)).checks == DEFAULT
    assert DEFAULT[0].args == ("--help",) and DEFAULT[0].exit == 0


@pytest.mark.parametrize("name", SAMPLES)
def test_samples_have_real_checks(name: str) -> None:
    checks = load(RECIPES / name).checks
    assert len(checks) >= 2 and checks != DEFAULT
    assert any(c.exit != 0 for c in checks)  # each proves a failure is reported as one
    assert all(c.stdout or c.stdout_regex or c.stderr for c in checks)


BAD = [
    ("[[checks]]\nargz = []\n", "[checks][0].argz: unknown key; did you mean 'args'?", 17),
    ('[[checks]]\nargs = ["{prot}"]\n', "{prot} is not a placeholder; did you mean 'port'?", 17),
    ('[[checks]]\nargs = ["{port}"]\n', "{port} needs a server", 17),
    ('[[checks]]\nserve = "tcp"\nargs = ["{url}"]\n', '{url} needs serve = "http"', 18),
    ('[[checks]]\nserve = "udp"\n', "'udp' is not a fixture", 17),
    ('[[checks]]\nstdout_regex = "(open"\n', "is not a regular expression", 17),
    ("[[checks]]\nexit = 300\n", "must be an exit code from 0 to 255", 17),
    ("[[checks]]\nexit = true\n", "must be an exit code", 17),
    ('[[checks]]\nfiles = { "../escape" = "x" }\n', "not a relative path inside", 17),
    ('[[checks]]\nfiles = { "/etc/passwd" = "x" }\n', "not a relative path inside", 17),
    ('[[checks]]\nfiles = { "a" = 1 }\n', "'a' must be a string", 17),
    ('[[checks]]\nenv = { "A-B" = "1" }\n', "'A-B' is not an environment variable name", 17),
    ("[[checks]]\ntimeout = 0\n", "must be seconds from 1 to 3600", 17),
    ('[[checks]]\nname = "x"\n[[checks]]\nname = "x"\n', "'x' names two checks", 19),
    ("checks = []\n", "is empty: every artifact must be proven to run", None),
    ("[checks]\nargs = []\n", "must be an array of tables", 16),
    ('[[checks]]\ntargets = ["linux-x86_64"]\n', "did you mean 'linux-amd64'?", 17),
    ('[[checks]]\ntargets = ["windows-amd64"]\n', "'windows-amd64' is not a target", 17),
    ("[[checks]]\ntargets = []\n", "lists no target: the check would never run", 17),
    ('[[checks]]\ntargets = "alpine-arm64"\n', "targets: must be a list of strings", 17),
]


@pytest.mark.parametrize(("text", "message", "line"), BAD)
def test_bad_checks_are_refused(tmp_path: Path, text: str, message: str, line: int | None) -> None:
    body = GOOD + "\n" + text if not text.startswith("checks =") else text + GOOD
    with pytest.raises(RecipeError) as err:
        load(write(tmp_path, body))
    assert message in err.value.message
    if line is not None:  # the line of the key, or of the [[checks]] header
        assert f"recipe.toml:{line}:" in err.value.message, err.value.message


def test_a_check_can_be_limited_to_some_targets(tmp_path: Path) -> None:
    text = GOOD + '\n[[checks]]\nargs = ["help"]\ntargets = ["linux-amd64", "linux-arm64"]\n'
    (check,) = load(write(tmp_path, text)).checks
    assert check.targets == ("linux-amd64", "linux-arm64")
    assert check.applies_to("linux-arm64") and not check.applies_to("alpine-arm64")
    assert check.to_dict()["targets"] == ["linux-amd64", "linux-arm64"]
    assert Check(name="x", args=()).applies_to("alpine-arm64")  # no key: every target
    assert "targets" not in Check(name="x", args=()).to_dict()


def test_an_artifact_no_check_is_for_is_not_run_and_says_why(tmp_path: Path) -> None:
    """Nothing is started (this tier may not start processes): the record says why."""
    from buildkit.cache import Cache
    from buildkit.checks.run import check_artifact

    only_glibc = (Check(name="help", args=("help",), targets=("linux-amd64", "linux-arm64")),)
    result = check_artifact(
        tmp_path / "app.pex",
        _record("alpine-arm64", "pex"),
        only_glibc,
        Cache(root=tmp_path / "cache"),
        tmp_path / "work",
    )
    assert result.status == "not-run" and not result.runs
    assert result.not_run == "none of the recipe's checks is for alpine-arm64 (their targets key)"


def test_too_big_fixture_is_refused(tmp_path: Path) -> None:
    text = GOOD + '\n[[checks]]\nstdin = "' + "x" * ((1 << 20) + 1) + '"\n'
    with pytest.raises(RecipeError, match="fixtures of 1048577 bytes; at most 1048576"):
        load(write(tmp_path, text))


# --- fixtures -------------------------------------------------------------------------


def test_tcp_fixture_listens_and_closed_port_refuses() -> None:
    check = Check(name="x", args=("{port}", "{closed_port}"), serve="tcp")
    with fixtures.serving(check, "/work") as values:
        with socket.create_connection(("127.0.0.1", int(values["port"])), timeout=5):
            pass
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", int(values["closed_port"])), timeout=5)
        assert fixtures.expand("{dir}/a {port} {other} {", values) == (
            f"/work/a {values['port']} {{other}} {{"
        )
    with pytest.raises(ConnectionRefusedError):  # gone after the check
        socket.create_connection(("127.0.0.1", int(values["port"])), timeout=5)


def test_http_fixture_answers_ok_and_any_status() -> None:
    check = Check(name="x", args=("{url}",), serve="http")
    with fixtures.serving(check, "/work") as values:
        with urllib.request.urlopen(values["url"] + "/", timeout=5) as answer:
            assert (answer.status, answer.read()) == (200, b"ok\n")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(values["url"] + "/status/503", timeout=5)
        assert err.value.code == 503


def test_files_are_written_in_the_working_folder(tmp_path: Path) -> None:
    check = Check(name="x", args=(), files=(("conf/a.ini", "k=v\n"), ("app.log", "")))
    fixtures.write_files(check, tmp_path)
    assert (tmp_path / "conf" / "a.ini").read_text() == "k=v\n"
    assert (tmp_path / "app.log").read_text() == ""


def test_a_check_copies_real_files_of_the_recipe_folder(tmp_path: Path) -> None:
    """Any bytes, hashed when the recipe is read; a file changed since is refused when
    the check's folder is made."""
    source = Path(json.__file__)  # a real file with real bytes
    (tmp_path / "fixtures").mkdir()
    (tmp_path / "fixtures" / "pkg.bin").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "fixtures" / "lib.py").write_bytes(source.read_bytes())
    text = GOOD + (
        '\n[[checks]]\nargs = ["pkg.whl"]\n'
        'copy = { "in/pkg.whl" = "fixtures/pkg.bin", "lib.py" = "fixtures/lib.py" }\n'
    )
    (check,) = load(write(tmp_path, text)).checks
    assert [(n, Path(s).name) for n, s, _ in check.copy] == [("in/pkg.whl", "pkg.bin"),
                                                             ("lib.py", "lib.py")]  # fmt: skip
    folder = tmp_path / "run"
    folder.mkdir()
    fixtures.write_files(check, folder)
    assert (folder / "in" / "pkg.whl").read_bytes() == bytes(range(256)) * 4
    assert (folder / "lib.py").read_bytes() == source.read_bytes()
    (tmp_path / "fixtures" / "pkg.bin").write_bytes(b"swapped")
    with pytest.raises(IntegrityError, match="changed since the recipe was read"):
        fixtures.write_files(check, tmp_path / "again")


@pytest.mark.parametrize(
    ("copy", "message"),
    [
        ('{ "a" = "../outside.txt" }', "is not a relative path inside the recipe folder"),
        ('{ "a" = "/etc/passwd" }', "is not a relative path inside the recipe folder"),
        ('{ "a" = "link.txt" }', "leads outside the recipe folder"),
        ('{ "a" = "missing.txt" }', "is not a file of the recipe folder"),
        ('{ "a" = "src" }', "is not a file of the recipe folder"),
        ('{ "../a" = "ok.txt" }', "is not a relative path inside the check's folder"),
        ('{ "a" = 3 }', "must be a string"),
    ],
)
def test_copies_from_outside_the_recipe_folder_are_refused(
    tmp_path: Path, copy: str, message: str
) -> None:
    (tmp_path / "outside.txt").write_text("secret")
    recipe = tmp_path / "recipe"
    recipe.mkdir()
    (recipe / "ok.txt").write_text("fine")
    (recipe / "link.txt").symlink_to(tmp_path / "outside.txt")
    with pytest.raises(RecipeError, match=re.escape(message)):
        load(write(recipe, GOOD + f"\n[[checks]]\nargs = []\ncopy = {copy}\n"))


def test_copies_are_bounded_in_size(tmp_path: Path) -> None:
    with (tmp_path / "big.bin").open("wb") as f:
        f.truncate((64 << 20) + 1)
    text = GOOD + '\n[[checks]]\nargs = []\ncopy = { "big" = "big.bin" }\n'
    with pytest.raises(RecipeError, match="over 64 MiB"):
        load(write(tmp_path, text))


# --- judging and records --------------------------------------------------------------


def test_judge_compares_exit_and_output() -> None:
    check = Check(name="x", args=(), exit=1, stdout="closed", stderr_regex=r"^warn: \d+$")
    assert judge(check, 1, "port closed\n", "warn: 3\n") == ()
    assert judge(check, 0, "open\n", "") == (
        "exit 0, expected 1",
        "stdout does not contain 'closed'",
        "stderr does not match /^warn: \\d+$/",
    )


def _outcome(problems: tuple[str, ...] = ()) -> Outcome:
    return Outcome(
        check="closed port",
        command=("app.pex", "127.0.0.1:9", "--json"),
        written=("app.pex", "127.0.0.1:{closed_port}", "--json"),
        expected="exit 1, stdout containing 'closed'",
        exit=0,
        problems=problems,
        stdout="open 127.0.0.1:9\n",
        stderr="",
        seconds=0.25,
    )


def test_failure_names_artifact_check_command_expected_and_actual() -> None:
    failed = ArtifactChecks(
        artifact="app-1.0-linux-amd64.pex",
        runs=(Run(where="this machine", outcomes=(_outcome(("exit 0, expected 1",)),)),),
    )
    text = describe([failed])
    assert "app-1.0-linux-amd64.pex: check 'closed port' on this machine" in text
    assert "command:  app.pex 127.0.0.1:9 --json" in text
    assert "expected: exit 1, stdout containing 'closed'" in text
    assert "got:      exit 0, expected 1" in text
    assert "open 127.0.0.1:9" in text
    assert failed.status == "failed"


def test_records_carry_the_checks_into_manifest_and_provenance() -> None:
    ran = ArtifactChecks(artifact="a", runs=(Run(where="this machine", outcomes=(_outcome(),)),))
    skipped = ArtifactChecks(artifact="b", runs=(), not_run="no darwin-arm64 host here")
    assert (ran.status, skipped.status) == ("passed", "not-run")
    assert summary({"a": ran, "b": skipped}) == (
        "checks passed for 1 of 2 artifact(s); not run here: b"
    )
    record = ArtifactRecord(
        name="a", recipe="app", version="1.0", target="linux-amd64", format="pex",
        python="3.11", sha256="0" * 64, size=1, lock="lockfiles/app/linux-amd64.txt",
        lock_digest="sha256:" + "1" * 64, inputs={}, checks=ran.record(),
    )  # fmt: skip
    back = ArtifactRecord.from_dict(json.loads(json.dumps(record.to_dict())), "m")
    assert back == record
    assert back.checks is not None
    result = back.checks["runs"][0]["results"][0]
    assert result["command"] == "app.pex '127.0.0.1:{closed_port}' --json"  # as written
    assert "seconds" not in result and "ran" not in result  # the release stays reproducible
    assert ran.to_dict()["runs"][0]["results"][0]["ran"] == "app.pex 127.0.0.1:9 --json"
    statement = json.loads(provenance.render("app", "1.0", [record]))
    (byproduct,) = statement["predicate"]["runDetails"]["byproducts"]
    assert byproduct["name"] == "checks/a"
    assert byproduct["annotations"]["status"] == "passed"
    assert (
        "checks"
        not in ArtifactRecord.from_dict(
            {k: v for k, v in record.to_dict().items() if k != "checks"}, "m"
        ).to_dict()
    )


@pytest.mark.parametrize(
    ("wheels", "expected"),
    [
        ([], True),
        (["urllib3-2.2.3-py3-none-any.whl"], True),
        (["psutil-6.1.0-cp36-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"], True),
        (["PyYAML-6.0.2-cp311-cp311-manylinux_2_17_x86_64.whl"], False),
        (["future-1.0-cp312-abi3-manylinux_2_17_x86_64.whl"], False),  # newer than 3.11
        (["not-a-wheel.zip"], False),
    ],
)
def test_which_artifacts_run_on_later_pythons(wheels: list[str], expected: bool) -> None:
    assert pythons.open_ended(wheels, "3.11") is expected
    assert pythons.newer("3.11", upto=13) == ["3.12", "3.13"]


def _record(target: str, fmt: str, python: str = "3.11", wheels: tuple[str, ...] = ()):
    return ArtifactRecord(
        name=f"app-1.0-{target}", recipe="app", version="1.0", target=target, format=fmt,
        python=python, sha256="0" * 64, size=1, lock="l", lock_digest="d",
        inputs={"wheels": [f"{w} sha256:{'0' * 64}" for w in wheels]},
    )  # fmt: skip


def test_where_each_artifact_runs(tmp_path: Path) -> None:
    from buildkit.cache import Cache
    from buildkit.checks import run

    cache = Cache(root=tmp_path / "cache")
    found, why = run.places(_record("darwin-arm64", "pex"), cache, tmp_path / "1")
    assert found == [] and why.startswith("no darwin-arm64 host here (this machine: linux")
    assert "only the static checks stand for it" in why
    found, why = run.places(_record("linux-arm64", "shiv"), cache, tmp_path / "2")
    assert found == [] and "buildkit host create linux-arm64" in why
    found, why = run.places(_record("linux-amd64", "nuitka"), cache, tmp_path / "3")
    (native,) = found
    assert why == "" and native.where.startswith("this machine (linux x86_64, glibc ")
    tied = ("PyYAML-6.0-cp311-cp311-manylinux_2_17_x86_64.whl",)
    found, _ = run.places(_record("linux-amd64", "pex", wheels=tied), cache, tmp_path / "4")
    assert [p.where.split(" with ")[1].split(" (")[0] for p in found] == ["Python 3.11"]
    assert found[0].python == pythons.find("3.11") and found[0].bin is not None
    bin_folder = run.python_bin(found[0].python, found[0].bin)  # made at the first run
    assert (bin_folder / "python3.11").resolve() == found[0].python.resolve()
    assert not [p.name for p in bin_folder.iterdir() if p.name.startswith("python3.1")
                and p.name != "python3.11"]  # fmt: skip
    pure = ("urllib3-2.2.3-py3-none-any.whl",)
    found, _ = run.places(_record("linux-amd64", "pex", wheels=pure), cache, tmp_path / "5")
    later = [v for v in pythons.newer("3.11") if pythons.find(v)]
    assert len(found) == 1 + len(later)
    found, _ = run.places(_record("linux-amd64", "shiv", wheels=pure), cache, tmp_path / "6")
    assert len(found) == 1  # shiv's header starts python3.11 only
