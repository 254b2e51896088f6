"""Issue 16 with the real tools: planted locks, unrecorded code in a release, hostile
files given to the commands. Tests are named ``test_itemNN_...`` by the issue's items."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from buildkit import build as build_mod
from buildkit import recipe as recipe_mod
from buildkit.backends import format_options
from buildkit.cache import Cache
from buildkit.targets import all_targets
from tests.conftest import RECIPES
from tests.integration.conftest import buildkit
from tests.unit.test_hostile_inputs import record_line


def evil_wheel(folder: Path) -> tuple[Path, str]:
    """What an attacker serves: a wheel whose .pth runs at every interpreter start."""
    folder.mkdir(parents=True, exist_ok=True)
    members = {
        "evil.pth": b"import os; os.environ['PWNED'] = '1'\n",
        "evil-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: evil\nVersion: 1.0\n",
        "evil-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(record_line(n, d) for n, d in members.items())
    record += "evil-1.0.dist-info/RECORD,,\n"
    path = folder / "evil-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        zf.writestr("evil-1.0.dist-info/RECORD", record)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def test_item01_a_planted_lock_is_refused_by_check_and_build(
    recipe_copy, tmp_path: Path, cache_dir: Path
) -> None:
    recipe = recipe_copy("healthcheck")
    lockfile = recipe.parents[1] / "lockfiles" / "healthcheck" / "linux-amd64.txt"
    wheel, digest = evil_wheel(tmp_path / "evil")
    good = lockfile.read_text()
    lockfile.write_text(good + f"--find-links {wheel.parent}\nevil==1.0 --hash=sha256:{digest}\n")
    line = len(good.splitlines()) + 1
    check = buildkit("lock", recipe, "--check", check=False)
    assert check.returncode == 2, check.stderr
    assert f"linux-amd64.txt:{line}: --find-links: an option line in a lock" in check.stderr
    out = tmp_path / "out"
    built = buildkit(
        "build", recipe, "--target", "linux-amd64", "--format", "pex", "--format", "shiv",
        "--out", out, "--cache-dir", cache_dir, check=False,
    )  # fmt: skip
    assert built.returncode == 2, built.stderr
    assert f"linux-amd64.txt:{line}: --find-links" in built.stderr
    assert not out.exists() or not any(out.iterdir())


def test_item02_a_stray_pin_with_a_consistent_header_fails_the_build(
    recipe_copy, tmp_path: Path, cache_dir: Path
) -> None:
    """A real package from the registry (six), pinned with its real hash and the
    pins-digest recomputed: `lock --check` cannot tell it from a dependency; the build,
    reading the wheels' metadata, names it and publishes nothing."""
    from buildkit import lock

    recipe = recipe_copy("healthcheck")
    lockfile = recipe.parents[1] / "lockfiles" / "healthcheck" / "linux-amd64.txt"
    six = "4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274"  # six 1.17.0 wheel
    forged = lock.read(lockfile)
    extra = lock.parse(f"six==1.17.0 --hash=sha256:{six}\n", lockfile).requirements
    lockfile.write_text(
        lock.Lockfile(
            recipe=forged.recipe, target=forged.target, python=forged.python,
            engine=forged.engine, inputs_digest=forged.inputs_digest,
            requirements=forged.requirements + extra,
        ).render()
    )  # fmt: skip
    assert buildkit("lock", recipe, "--check", "--target", "linux-amd64").returncode == 0
    out = tmp_path / "out"
    built = buildkit(
        "build", recipe, "--target", "linux-amd64", "--format", "pex",
        "--out", out, "--cache-dir", cache_dir, check=False,
    )  # fmt: skip
    assert built.returncode == 1, built.stderr
    assert "six==1.17.0 is pinned, but neither the recipe nor any pinned package requires it" in (
        built.stderr
    )
    assert not out.exists() or not any(out.iterdir())


def test_item01_verify_names_code_no_lock_pinned(
    recipe_copy, tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A release made the way the code before this fix made one from a planted lock (the
    tools followed the lock's own lines): every digest agrees, and verify still names the
    zipapps that hold a distribution the manifest does not record."""
    recipe_dir = recipe_copy("healthcheck")
    wheel, digest = evil_wheel(tmp_path / "evil")
    rebuilt = build_mod._requirements

    def as_before(*args: object) -> Path:
        path = rebuilt(*args)  # type: ignore[arg-type]
        planted = f"--find-links {wheel.parent}\nevil==1.0 --hash=sha256:{digest}\n"
        path.write_text(path.read_text() + planted)
        return path

    monkeypatch.setattr(build_mod, "_requirements", as_before)
    recipe = recipe_mod.load(recipe_dir, formats=format_options(), targets=all_targets())
    out = tmp_path / "out"
    build_mod.build(
        recipe,
        want_targets=["linux-amd64"],
        want_formats=["pex", "shiv"],
        out=out,
        cache=Cache(root=tmp_path / "cache"),
    )
    with zipfile.ZipFile(out / "healthcheck-1.0.0-linux-amd64.pex") as zf:
        assert any(n.endswith("/evil.pth") for n in zf.namelist())  # the plant took
    proc = buildkit("verify", out, check=False)
    assert proc.returncode == 1, proc.stdout
    for name in ("healthcheck-1.0.0-linux-amd64.pex", "healthcheck-1.0.0-linux-amd64.pyz"):
        assert re.search(
            rf"FAIL\s+contents\s+{re.escape(name)}: holds evil==1, which manifest.json does "
            "not record",
            proc.stdout,
        ), proc.stdout


# --- items 5 and 17: signatures and the ops staff's download folder ----------------------

IDENTITY = "release@example.org"


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> dict[str, Path]:
    """A signed release of healthcheck (pex, linux-amd64), the key, and two allowed
    signers files: the right key, and another one."""
    folder = tmp_path_factory.mktemp("signed")
    keys = {}
    for who in ("team", "stranger"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", IDENTITY, "-f", folder / who],
            check=True,
        )
        kind, blob = (folder / f"{who}.pub").read_text().split()[:2]
        (folder / f"{who}.allowed").write_text(f"{IDENTITY} {kind} {blob}\n")
        keys[who] = folder / f"{who}.allowed"
    out = folder / "dist"
    buildkit("build", RECIPES / "healthcheck", "--format", "pex", "--target", "linux-amd64",
             "--out", out, "--cache-dir", cache_dir, "--sign-key", folder / "team")  # fmt: skip
    return {"out": out, "team": keys["team"], "stranger": keys["stranger"]}


def test_item05_an_unchecked_signer_is_never_a_pass(signed: dict[str, Path]) -> None:
    out = signed["out"]
    usage = buildkit("verify", out, "--require-signature", check=False)
    assert usage.returncode == 2 and "--require-signature needs --allowed-signers" in usage.stderr
    plain = buildkit("verify", out)
    assert re.search(r"^WARN\s+signature\s+SHA256SUMS.sig: signature not checked", plain.stdout,
                     re.M), plain.stdout  # fmt: skip
    assert not re.search(r"^ok\s+signature", plain.stdout, re.M)
    good = buildkit("verify", out, "--require-signature", "--allowed-signers", signed["team"],
                    "--identity", IDENTITY)  # fmt: skip
    assert re.search(r"^ok\s+signature", good.stdout, re.M)
    other = buildkit("verify", out, "--require-signature", "--allowed-signers",
                     signed["stranger"], "--identity", IDENTITY, check=False)  # fmt: skip
    assert other.returncode == 1 and re.search(r"^FAIL\s+signature", other.stdout, re.M)


def test_item17_identity_alone_is_a_usage_error(signed: dict[str, Path]) -> None:
    proc = buildkit("verify", signed["out"], "--identity", IDENTITY, check=False)
    assert proc.returncode == 2 and "--identity needs --allowed-signers" in proc.stderr


def test_item17_the_ops_download_folder_verifies(signed: dict[str, Path], tmp_path: Path) -> None:
    """What ops staff download: one artifact, SHA256SUMS, its signature, the manifest,
    and the allowed_signers file they installed next to it."""
    name = "healthcheck-1.0.0-linux-amd64.pex"
    folder = tmp_path / "download"
    folder.mkdir()
    for file in (name, "SHA256SUMS", "SHA256SUMS.sig", "manifest.json"):
        shutil.copy(signed["out"] / file, folder / file)
    shutil.copy(signed["team"], folder / "allowed_signers")
    args = ("--allowed-signers", folder / "allowed_signers", "--identity", IDENTITY,
            "--require-signature")  # fmt: skip
    ok = buildkit("verify", folder, "--artifact", name, *args)
    assert "FAIL" not in ok.stdout and re.search(rf"^ok\s+contents\s+{re.escape(name)}",
                                                 ok.stdout, re.M)  # fmt: skip
    whole = buildkit("verify", signed["out"], *args[:2], "--identity", IDENTITY)
    assert "unlisted" not in whole.stdout
    shutil.copy(signed["team"], signed["out"] / "allowed_signers")
    try:  # the allowed signers file given may sit in the release folder itself
        beside = buildkit("verify", signed["out"], "--allowed-signers",
                          signed["out"] / "allowed_signers", "--identity", IDENTITY)  # fmt: skip
        assert "unlisted" not in beside.stdout
    finally:
        (signed["out"] / "allowed_signers").unlink()
    data = bytearray((folder / name).read_bytes())
    data[100] ^= 1
    (folder / name).write_bytes(bytes(data))
    bad = buildkit("verify", folder, "--artifact", name, *args, check=False)
    assert bad.returncode == 1 and re.search(rf"^FAIL\s+checksum\s+{re.escape(name)}",
                                             bad.stdout, re.M)  # fmt: skip
    missing = buildkit("verify", folder, "--artifact", "other.pex", *args, check=False)
    assert missing.returncode == 1 and "other.pex: not in SHA256SUMS" in missing.stdout


# --- item 16: real wheels with vendored metadata ------------------------------------------

VENDORING = """\
[recipe]
name = "vendoring"
version = "1.0.0"
entry = "vendoring:main"
sources = ["src"]
requirements = ["setuptools==84.2.1"]
python = "3.11"

[targets]
linux-amd64 = {}

[formats]
pex = {}
shiv = {}
"""


def test_item16_a_real_wheel_with_vendored_dist_info_builds_and_runs(
    tmp_path: Path, cache_dir: Path, run_env: dict[str, str]
) -> None:
    """setuptools 84.2.1 carries a dozen setuptools/_vendor/*.dist-info/RECORD files
    besides its own; the hostile-wheel check refused it before the fix."""
    project = tmp_path / "project"
    recipe = project / "recipes" / "vendoring"
    (recipe / "src").mkdir(parents=True)
    (project / "lockfiles").mkdir()
    (recipe / "recipe.toml").write_text(VENDORING)
    (recipe / "src" / "vendoring.py").write_text(
        "def main():\n"
        "    import setuptools\n"
        "    from setuptools._vendor import packaging\n"
        "    print('setuptools', setuptools.__version__, 'vendors packaging', packaging.__version__)\n"
    )
    buildkit("lock", recipe)
    out = tmp_path / "out"
    buildkit("build", recipe, "--out", out, "--cache-dir", cache_dir)
    for name in ("vendoring-1.0.0-linux-amd64.pex", "vendoring-1.0.0-linux-amd64.pyz"):
        ran = subprocess.run(["python3.11", out / name], env=run_env, capture_output=True,
                             text=True, check=True)  # fmt: skip
        assert ran.stdout.startswith("setuptools 84.2.1 vendors packaging "), ran.stdout
    assert buildkit("verify", out).returncode == 0


# --- item 6: verify against hostile release folders ---------------------------------------

PEX = "healthcheck-1.0.0-linux-amd64.pex"


def _duplicate(out: Path) -> str:
    sums = out / "SHA256SUMS"
    sums.write_text(f"{'0' * 64}  {PEX}\n" + sums.read_text())
    return "is listed twice (lines 1 and"


def _symlink(out: Path) -> str:
    real = out.parent / "elsewhere.pex"
    (out / PEX).rename(real)
    (out / PEX).symlink_to(real)
    return f"{PEX}: a symbolic link; a release holds regular files only"


def _nested(out: Path) -> str:
    (out / "manifest.json").write_text("[" * 200_000)
    return "manifest.json: unreadable: RecursionError"


def _mistyped_sbom(out: Path) -> str:
    (out / "healthcheck-1.0.0.cdx.json").write_text('{"bomFormat": "CycloneDX", "components": 5}')
    return "healthcheck-1.0.0.cdx.json: malformed: TypeError"


def _mistyped_provenance(out: Path) -> str:
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "predicateType": "https://slsa.dev/provenance/v1",
        "subject": ["x"],
    }
    (out / "healthcheck-1.0.0.intoto.jsonl").write_text(json.dumps(statement) + "\n")
    return "healthcheck-1.0.0.intoto.jsonl: malformed: AttributeError"


def _fifo(out: Path) -> str:
    (out / "manifest.json").unlink()
    os.mkfifo(out / "manifest.json")
    return "manifest.json: unreadable: NotRegular"


def _control_characters(out: Path) -> str:
    (out / "evil\x1b[2J\u202etxt.pex").write_bytes(b"x")
    return "evil\\x1b[2J\\u202etxt.pex: file present but not in SHA256SUMS"


@pytest.mark.parametrize(
    "mutate",
    [_duplicate, _symlink, _nested, _mistyped_sbom, _mistyped_provenance, _fifo,
     _control_characters],
)  # fmt: skip
def test_item06_verify_names_each_hostile_file_without_a_traceback(
    signed: dict[str, Path], tmp_path: Path, mutate
) -> None:
    out = tmp_path / "dist"
    shutil.copytree(signed["out"], out)
    says = mutate(out)
    proc = subprocess.run(
        [sys.executable, "-m", "buildkit", "verify", out],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "\x1b" not in proc.stdout + proc.stderr
    assert says in proc.stdout, proc.stdout
    if mutate is _duplicate:  # the oracle agrees it is a failure
        oracle = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=out, capture_output=True,
                                check=False)  # fmt: skip
        assert oracle.returncode != 0
