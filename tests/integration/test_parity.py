"""Parity: a Nuitka binary does every command its pex does, not only what the checks ran.

Two real CLIs from PyPI (tests/realworld) that defeat a binary built from what its checks
touch: jc imports each of its ~230 parsers by name when asked for it (its checks try
two), and flake8 finds its checkers and their versions through ``importlib.metadata``
(entry points of its distribution). Both are built as a pex and a traced Nuitka binary;
here the two run commands the recipes' checks never run and must answer alike. Then the
parity proof itself: the manifest records what it showed, and a build whose binary lacks
a module the pex has fails, naming it, and publishes nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.integration.conftest import buildkit

pytestmark = [pytest.mark.integration, pytest.mark.nuitka]

REALWORLD = ROOT / "tests" / "realworld"

# (arguments, standard input): parsers and options the jc recipe's checks never use
JC = [
    (["--csv"], "a,b\n1,2\n"),
    (["--xml"], "<a><b>1</b></a>\n"),  # xmltodict
    (["--yaml"], "a: 1\nb: [x, y]\n"),  # ruamel.yaml
    (["--ini"], "[s]\nk = v\n"),
    (["--uptime"], " 10:00:00 up 1 day,  2:00,  1 user,  load average: 0.00, 0.01, 0.05\n"),
    (["--ps"], "UID PID PPID C STIME TTY TIME CMD\nroot 1 0 0 10:00 ? 00:00:01 /sbin/init\n"),
    (["--env"], "A=1\nB=two\n"),
    (["-C", "--passwd"], "root:x:0:0:root:/root:/bin/bash\n"),  # colour: pygments by name
    (["-p", "--ls"], "total 0\n-rw-r--r-- 1 root root 0 Jan  2 03:04 a\n"),
    (["-h", "--date"], ""),  # a parser's documentation
    (["-a"], ""),  # every parser's metadata: each module imported
]
FAULTY = "import os\nx=1 \ndef f( a ):\n  return a\n"
COMPLEX = (
    "def g(a):\n    if a:\n        return 1\n    elif a > 2:\n        return 2\n    return 3\n"
)
FLAKE8 = [
    ["faulty.py"],
    ["--max-complexity", "1", "complex.py"],  # mccabe, a plugin found by entry point
    ["--statistics", "--count", "faulty.py"],
    ["--format=pylint", "--select", "F,E", "faulty.py"],
    ["--show-source", "faulty.py"],
    ["."],  # several files: flake8 checks them in worker processes
    ["--help"],  # options the plugins registered
    ["--bug-report"],  # every plugin and its version, from the metadata
]


@pytest.fixture(scope="module")
def parity_dist(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Path:
    dist = tmp_path_factory.mktemp("parity")
    for name in ("jc", "flake8"):
        buildkit("build", REALWORLD / name, "--target", "linux-amd64", "--format", "pex",
                 "--format", "nuitka", "--out", dist, "--cache-dir", cache_dir)  # fmt: skip
    return dist


def _run(app: Path, args: list[str], stdin: str, cwd: Path) -> tuple[int, str, str]:
    home = cwd.parent / f"home-{app.name}"
    home.mkdir(exist_ok=True)
    gone = ("PEX_ROOT", "SHIV_ROOT", "XDG_CACHE_HOME", "PYTHONPATH")
    env = {k: v for k, v in os.environ.items() if k not in gone}
    env.update(HOME=str(home), COLUMNS="100", NO_COLOR="")
    proc = subprocess.run([app, *args], input=stdin, capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300, check=False)  # fmt: skip
    return proc.returncode, proc.stdout, proc.stderr


def _same_python(text: str) -> str:
    """The interpreter's version and path differ between a pex and a binary by design."""
    doc = json.loads(text)
    for key in ("python_version", "python_path"):
        doc.pop(key, None)
    if isinstance(doc.get("platform"), dict):  # flake8 --bug-report
        doc["platform"].pop("python_version", None)
    return json.dumps(doc, sort_keys=True)


def test_jc_binary_parses_what_its_pex_parses(parity_dist: Path, tmp_path: Path) -> None:
    pex, binary = parity_dist / "jc-1.25.0-linux-amd64.pex", parity_dist / "jc-1.25.0-linux-amd64"
    work = tmp_path / "work"
    work.mkdir()
    for args, stdin in JC:
        want = _run(pex, args, stdin, work)
        got = _run(binary, args, stdin, work)
        assert want[0] == 0, (args, want)
        if args == ["-a"]:
            assert _same_python(got[1]) == _same_python(want[1]), args
            assert json.loads(got[1])["parser_count"] > 200
        else:
            assert got[:2] == want[:2], (args, got, want)


def test_flake8_binary_lints_like_its_pex(parity_dist: Path, tmp_path: Path) -> None:
    pex = parity_dist / "flake8-7.0.0-linux-amd64.pex"
    binary = parity_dist / "flake8-7.0.0-linux-amd64"
    work = tmp_path / "work"
    work.mkdir()
    (work / "faulty.py").write_text(FAULTY)
    (work / "complex.py").write_text(COMPLEX)
    for args in FLAKE8:
        want = _run(pex, args, "", work)
        got = _run(binary, args, "", work)
        if args == ["--bug-report"]:
            assert got[0] == want[0] == 0
            assert _same_python(got[1]) == _same_python(want[1])
            plugins = {p["plugin"] for p in json.loads(got[1])["plugins"]}
            assert {"pycodestyle", "pyflakes", "mccabe"} <= plugins
            continue
        if args == ["--help"]:  # the program's name differs: usage: flake8 [options]
            want = (want[0], want[1].replace(pex.name, "flake8"), want[2])
            got = (got[0], got[1].replace(binary.name, "flake8"), got[2])
        assert got[:2] == want[:2], (args, got, want)
    # the faults were found: the checkers were there to find them
    assert "F401 'os' imported but unused" in _run(binary, ["faulty.py"], "", work)[1]
    assert "C901 'g' is too complex" in _run(binary, FLAKE8[1], "", work)[1]


def test_the_manifest_records_what_the_parity_proof_showed(parity_dist: Path) -> None:
    doc = json.loads((parity_dist / "manifest.json").read_text())
    native = {a["recipe"]: a for a in doc["artifacts"] if a["format"] == "nuitka"}
    jc, flake8 = native["jc"]["parity"], native["flake8"]["parity"]
    assert jc["modules"] > 300 and jc["data"] >= 1, jc  # jc, pygments, ruamel.yaml, ...
    assert flake8["modules"] > 40, flake8
    settings = native["jc"]["inputs"]["settings"]
    assert settings["contents"] == "lock" and settings["compile"] == "own+traced"
    assert all(a.get("parity") is None for a in doc["artifacts"] if a["format"] == "pex")


def test_a_binary_lacking_a_module_of_the_pex_is_not_published(
    recipe_copy, tmp_path: Path, cache_dir: Path
) -> None:
    """portcheck gains a CSV report module that nothing imports by a statement (the
    program would load it by name) and its recipe leaves out the standard library's
    ``csv``, which its checks never use: the pex imports ``portcheck.report``, the
    binary cannot, so the build fails before any check, naming it, and publishes
    nothing."""
    recipe = recipe_copy("portcheck")
    (recipe / "src" / "portcheck" / "report.py").write_text(
        "import csv\n\n\ndef write(rows, out):\n    csv.writer(out).writerows(rows)\n"
    )
    toml = recipe / "recipe.toml"
    toml.write_text(toml.read_text().replace('"pickle", "unittest"', '"pickle", "csv", "unittest"'))
    out = tmp_path / "dist"
    proc = buildkit("build", recipe, "--target", "linux-amd64", "--format", "nuitka",
                    "--out", out, "--cache-dir", cache_dir, check=False)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "portcheck-1.0.0-linux-amd64: the binary lacks what the pex of the same lock has" in (
        proc.stderr
    )
    assert "(1 of 3):\n  module portcheck.report (ImportError: Module 'csv' was actively " in (
        proc.stderr
    )
    assert "checks passed" not in proc.stderr  # the proof comes first
    assert not out.exists() or not any(out.iterdir())


def test_the_trace_runs_on_the_interpreter_the_binary_embeds(
    recipe_copy, tmp_path: Path, cache_dir: Path
) -> None:
    """portcheck, traced, gains what awscli does at start-up: ``import sqlite3`` when
    there is one. The toolchain's CPython has none (no SQLite in its lock), Debian's
    Python running buildkit has: traced under the latter, the trace named ``_sqlite3`` and
    Nuitka stopped (exit 3); traced under the binary's own interpreter, the program takes
    its no-sqlite path there as in the binary, and the build passes.

    And what docutils does with pygments: an optional import of a package the lock does
    not have but the toolkit running Nuitka does (rich). Nuitka follows imports through
    its own interpreter's folders, so the binary held the toolkit's rich (awscli's held
    328 modules of pygments: code no hash of the recipe's lock checked, in no SBOM) and
    answered otherwise than the pex. A check asks the binary itself."""
    recipe = recipe_copy("portcheck")
    init = recipe / "src" / "portcheck" / "__init__.py"
    init.write_text(
        init.read_text()
        + "\ntry:\n    import sqlite3\nexcept ImportError:\n    sqlite3 = None\n"
        + "try:\n    import rich\nexcept ImportError:\n    rich = None\n"
        + "import os as _os\nif _os.environ.get('PORTCHECK_SAY_RICH'):\n"
        + "    print('rich:', 'absent' if rich is None else 'present')\n"
    )
    toml = recipe / "recipe.toml"
    text = toml.read_text()
    start = text.index("nuitka = { exclude")
    toml.write_text(
        text[:start]
        + 'nuitka = { trace = "include" }\n'
        + text[text.index("] }", start) + 4 :]
        + '\n[[checks]]\nname = "rich is not the program\'s"\n'
        + 'args = ["127.0.0.1:{closed_port}", "--timeout", "5"]\n'
        + 'env = { PORTCHECK_SAY_RICH = "1" }\nexit = 1\nstdout_regex = "^rich: absent"\n'
    )
    out = tmp_path / "dist"
    proc = buildkit("build", recipe, "--target", "linux-amd64", "--format", "nuitka",
                    "--out", out, "--cache-dir", cache_dir, "--json")  # fmt: skip
    (artifact,) = json.loads(proc.stdout)["artifacts"]
    info = json.loads(buildkit("inspect", artifact["path"], "--json").stdout)
    traced = info["settings"]["include_modules"].split(",")
    assert "socket" in traced, traced  # the trace ran, and recorded what the checks imported
    assert not {"sqlite3", "_sqlite3"} & set(traced), traced
    assert "rich" not in traced, traced  # the trace ran on the program's own search path
    manifest = json.loads((out / "manifest.json").read_text())
    (entry,) = manifest["artifacts"]
    results = {r["check"]: r["passed"] for run in entry["checks"]["runs"] for r in run["results"]}
    assert results["rich is not the program's"] is True, results
