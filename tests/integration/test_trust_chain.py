"""Issue 16 with the real tools: planted locks, unrecorded code in a release, hostile
files given to the commands. Tests are named ``test_itemNN_...`` by the issue's items."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from buildkit import build as build_mod
from buildkit import recipe as recipe_mod
from buildkit.backends import format_options
from buildkit.cache import Cache
from buildkit.targets import all_targets
from tests.conftest import RECIPES, ROOT
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
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- allowed-signers[^>]*-->\n```sh\n(.*?)```", text, re.S)
    assert block, "README has no allowed-signers block"
    for who in ("team", "stranger"):
        (folder / who).mkdir()
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "someone@host",
                        "-f", folder / who / "release"], check=True)  # fmt: skip
        subprocess.run(["sh", "-e", "-c", block.group(1)], cwd=folder / who, check=True)
        keys[who] = folder / who / "allowed_signers"
    out = folder / "dist"
    buildkit("build", RECIPES / "healthcheck", "--format", "pex", "--target", "linux-amd64",
             "--out", out, "--cache-dir", cache_dir, "--sign-key", folder / "team" / "release")  # fmt: skip
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


def zipapp_project(root: Path, name: str, files: dict[str, str], requirements: str = "") -> Path:
    """A project with one small recipe (pex and shiv for linux-amd64), locked; returns
    the recipe folder."""
    recipe = root / "recipes" / name
    for rel, text in files.items():
        (recipe / "src" / rel).parent.mkdir(parents=True, exist_ok=True)
        (recipe / "src" / rel).write_text(text)
    (root / "lockfiles").mkdir()
    (recipe / "recipe.toml").write_text(
        f'[recipe]\nname = "{name}"\nversion = "1.0.0"\nentry = "{name}:main"\n'
        f'sources = ["src"]\nrequirements = [{requirements}]\npython = "3.11"\n\n'
        "[targets]\nlinux-amd64 = {}\n\n[formats]\npex = {}\nshiv = {}\n"
    )
    buildkit("lock", recipe)
    return recipe


def test_item16_a_real_wheel_with_vendored_dist_info_builds_and_runs(
    tmp_path: Path, cache_dir: Path, run_env: dict[str, str]
) -> None:
    """setuptools 84.2.1 carries a dozen setuptools/_vendor/*.dist-info/RECORD files
    besides its own; the hostile-wheel check refused it before the fix."""
    main = (
        "def main():\n"
        "    import setuptools\n"
        "    from setuptools._vendor import packaging\n"
        "    print('setuptools', setuptools.__version__, 'vendors packaging', packaging.__version__)\n"
    )
    recipe = zipapp_project(tmp_path / "project", "vendoring", {"vendoring.py": main},
                            '"setuptools==84.2.1"')  # fmt: skip
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


# --- items 10, 11, 12: commands facing hostile files ------------------------------------------

SO = Path("/usr/lib/x86_64-linux-gnu/libdl.so.2")


def timed(*args: str | Path, timeout: float = 60) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    proc = subprocess.run([*map(str, args)], capture_output=True, text=True, timeout=timeout,
                          check=False, env={**os.environ, "CI": "true"})  # fmt: skip
    return proc, time.monotonic() - started


BUILDKIT = (sys.executable, "-m", "buildkit")


def test_item10_sigterm_to_the_process_group_ends_a_long_audit(tmp_path: Path) -> None:
    """`timeout` sends SIGTERM to the whole process group: the audit's workers die with
    the parent, which printed one line and exited 143 (before, the pool's terminate
    waited for ever on a lock a dead worker held)."""
    big = tmp_path / "big.pex"
    seed = SO.read_bytes()[:256]
    with zipfile.ZipFile(big, "w") as zf:
        for i in range(100_000):
            zf.writestr(f"lib/m{i:06d}.so", seed)
    proc, took = timed("timeout", "--preserve-status", "-s", "TERM", "5", *BUILDKIT, "audit", big)
    assert proc.returncode == 143, proc.stderr
    assert took < 5 + 5, took
    assert proc.stderr.splitlines() == [
        "buildkit: error: stopped by SIGTERM; nothing half-written was kept (run the same "
        "command again to finish)"
    ]


def test_item10_sigterm_while_lief_loads_unwinds_cleanly() -> None:
    """A stop that lands while LIEF initialises is held until the import is done: one
    line and 143, never a C++ abort (134)."""
    for delay in ("0.7", "0.9", "1.1"):
        proc, _ = timed("timeout", "--preserve-status", "-s", "TERM", delay, *BUILDKIT, "audit",
                        SO)  # fmt: skip
        assert proc.returncode in (0, 143), (delay, proc.returncode, proc.stderr)
        assert "terminate called" not in proc.stderr and "Traceback" not in proc.stderr


def nested(root: Path, levels: int) -> Path:
    """``levels`` folders inside each other (made with relative paths: no PATH_MAX)."""
    here = os.getcwd()
    root.mkdir()
    os.chdir(root)
    try:
        for _ in range(levels):
            os.mkdir("d")
            os.chdir("d")
        Path("x").write_bytes(SO.read_bytes())
    finally:
        os.chdir(here)
    return root


@pytest.mark.parametrize("case", ["dev-zero", "fifo", "link-loop", "deep", "zero-tar-gz",
                                  "zero-tar", "text"])  # fmt: skip
def test_item11_audit_reads_only_what_it_can_bound(tmp_path: Path, case: str) -> None:
    if case == "dev-zero":
        path, code, says = Path("/dev/zero"), 2, "a character device: only regular files"
    elif case == "fifo":
        path = tmp_path / "app.pex"
        os.mkfifo(path)
        code, says = 2, "a FIFO: only regular files and folders are audited"
    elif case == "link-loop":
        path = tmp_path / "tree"
        path.mkdir()
        (path / "a").symlink_to(path / "b")
        (path / "b").symlink_to(path / "a")
        code, says = 0, "not followed"
    elif case == "deep":
        path, code, says = nested(tmp_path / "deep", 1100), 2, "deeper than 64 folder levels"
    elif case in ("zero-tar-gz", "zero-tar"):
        path = tmp_path / ("app.tar.gz" if case == "zero-tar-gz" else "app.tar")
        path.write_bytes(bytes(1 << 20))
        code = 2
        says = "not a gzip file" if case == "zero-tar-gz" else "a tar archive with no file in it"
    else:
        path = tmp_path / "notes.txt"
        path.write_text("hello\n")
        code, says = 0, "not an ELF or Mach-O file, a zip or a tar archive"
    try:
        proc, took = timed(*BUILDKIT, "audit", path, timeout=30)
    finally:
        if case == "deep":  # deeper than shutil.rmtree (pytest's cleanup) can recurse
            subprocess.run(["rm", "-rf", path], check=True)
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert says in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and took < 10


def test_item11_a_gated_audit_of_an_unreadable_archive_is_never_a_pass(tmp_path: Path) -> None:
    path = tmp_path / "app.tar.gz"
    path.write_bytes(bytes(4096))
    policy = tmp_path / "policy.toml"
    policy.write_text('[hardening]\nrequire = ["relro-full"]\n')
    proc, _ = timed(*BUILDKIT, "audit", path, "--policy", policy)
    assert proc.returncode != 0 and "passed" not in proc.stdout.lower().split("gate")[-1][:20]


def test_item12_inspect_is_bounded(tmp_path: Path) -> None:
    sparse = tmp_path / "sparse.bin"
    with sparse.open("wb") as f:
        f.truncate(2 << 30)
    bomb = tmp_path / "bomb.pex"
    with (
        zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf,
        zf.open("__buildkit__.json", "w", force_zip64=True) as member,
    ):
        chunk = bytes(16 << 20)
        for _ in range(100):  # 1.6 GB of zeros
            member.write(chunk)
    deep = tmp_path / "deep.pex"
    with zipfile.ZipFile(deep, "w") as zf:
        zf.writestr("__buildkit__.json", "[" * 200_000)
    zeros = tmp_path / "zeros.bin"
    zeros.write_bytes(bytes(100 << 20))
    badcrc = tmp_path / "badcrc.pex"
    with zipfile.ZipFile(badcrc, "w") as zf:
        zf.writestr("__buildkit__.json", '{"recipe": "demo"}')
    data = bytearray(badcrc.read_bytes())
    data[data.index(b'"recipe"')] ^= 1
    badcrc.write_bytes(bytes(data))
    fifo = tmp_path / "fifo.pex"
    os.mkfifo(fifo)
    cases = {
        sparse: "larger than any artifact buildkit reads",
        bomb: "its build info member declares 1677721600 bytes",
        deep: "its build info is not valid JSON",
        zeros: "no buildkit build info inside",
        badcrc: "unreadable archive: Bad CRC-32",
        fifo: "not a regular file",
    }
    for path, says in cases.items():
        proc, took = timed(*BUILDKIT, "inspect", path, timeout=30)
        assert proc.returncode == 2, (path.name, proc.stderr)
        assert says in proc.stderr and "Traceback" not in proc.stderr, (path.name, proc.stderr)
        assert took < 10, (path.name, took)  # a hang guard; the README gives measured times


# --- item 15: a shared cache that swaps an artifact -----------------------------------------


def test_item15_an_action_entry_pointing_at_another_artifact_is_a_miss(
    tmp_path: Path,
) -> None:
    cache = tmp_path / "cache"
    first = tmp_path / "first"
    buildkit("build", RECIPES / "healthcheck", "--format", "pex", "--target", "linux-amd64",
             "--target", "darwin-arm64", "--out", first, "--cache-dir", cache)  # fmt: skip
    doc = json.loads((first / "manifest.json").read_text())
    sha = {a["target"]: a["sha256"] for a in doc["artifacts"]}
    entries = list((cache / "actions").rglob("*.json"))
    (amd64,) = [e for e in entries if json.loads(e.read_text())["sha256"] == sha["linux-amd64"]]
    entry = json.loads(amd64.read_text())
    entry["sha256"] = sha["darwin-arm64"]  # another user with write access swaps it
    amd64.write_text(json.dumps(entry))
    again = tmp_path / "again"
    proc = buildkit("build", RECIPES / "healthcheck", "--format", "pex", "--target",
                    "linux-amd64", "--out", again, "--cache-dir", cache)  # fmt: skip
    assert f"refused cache entry {amd64}: it is not sealed with this cache's key" in proc.stderr
    inspected = json.loads(
        buildkit("inspect", again / "healthcheck-1.0.0-linux-amd64.pex", "--json").stdout
    )
    assert inspected["target"] == "linux-amd64"
    assert (
        hashlib.sha256((again / "healthcheck-1.0.0-linux-amd64.pex").read_bytes()).hexdigest()
        == sha["linux-amd64"]
    )


# --- item 4: a signing build signs only what it can vouch for ------------------------------


def test_item04_sign_key_refuses_to_sign_files_it_did_not_build(
    recipe_copy, tmp_path: Path
) -> None:
    recipe = recipe_copy("healthcheck")
    lockfile = recipe.parents[1] / "lockfiles" / "healthcheck" / "linux-amd64.txt"
    folder = tmp_path / "keys"
    folder.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", folder / "key"],
                   check=True)  # fmt: skip
    key, cache, other_cache = folder / "key", tmp_path / "cache", tmp_path / "other-cache"
    out = tmp_path / "dist"

    def hc(fmt: str, *extra: str | Path, cache_dir: Path = cache, check: bool = True):  # type: ignore[no-untyped-def]
        return buildkit("build", recipe, "--format", fmt, "--target", "linux-amd64",
                        "--out", out, "--cache-dir", cache_dir, *extra, check=check)  # fmt: skip

    hc("pex", "--sign-key", key)
    hc("shiv", "--sign-key", key)  # keeps the pex: same recipe, lock and cache
    # a signing build with another cache cannot vouch for what the first one built
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    refused = hc("shiv", "--sign-key", key, cache_dir=other_cache, check=False)
    assert refused.returncode == 1, refused.stderr
    assert "healthcheck-1.0.0-linux-amd64.pex (not built with this cache)" in refused.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing written
    # the lock changed since the pex was built (a header line: the pins are the same)
    lockfile.write_text(lockfile.read_text().replace("# engine: uv", "# engine:  uv"))
    refused = hc("shiv", "--sign-key", key, check=False)
    assert "healthcheck-1.0.0-linux-amd64.pex (built from another version of linux-amd64.txt)" in (
        refused.stderr
    )
    hc("pex")  # rebuilt from the lock as it is now
    # another recipe's artifact, and a file only SHA256SUMS lists
    buildkit("build", RECIPES / "portcheck", "--format", "pex", "--target", "linux-amd64",
             "--out", out, "--cache-dir", cache)  # fmt: skip
    (out / "notes.txt").write_text("planted\n")
    sums = out / "SHA256SUMS"
    digest = hashlib.sha256(b"planted\n").hexdigest()
    sums.write_text("".join(sorted([*sums.read_text().splitlines(True), f"{digest}  notes.txt\n"])))
    refused = hc("shiv", "--sign-key", key, check=False)
    assert refused.returncode == 1
    assert "portcheck-1.0.0-linux-amd64.pex (built from portcheck 1.0.0)" in refused.stderr
    assert "notes.txt (listed in SHA256SUMS, not an artifact of manifest.json)" in refused.stderr
    assert "healthcheck-1.0.0-linux-amd64.pex" not in refused.stderr
    hc("shiv", "--sign-key", key, "--keep-foreign")
    entries = {a["name"]: a for a in json.loads((out / "manifest.json").read_text())["artifacts"]}
    assert "unvouched" in entries["portcheck-1.0.0-linux-amd64.pex"]
    assert "unvouched" not in entries["healthcheck-1.0.0-linux-amd64.pex"]
    assert (out / "SHA256SUMS.sig").is_file()


# --- items 13, 14: zipapps on a shared host ------------------------------------------------


@pytest.fixture(scope="module")
def probe_apps(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Path:
    """A recipe whose entry reports what it runs with: its umask, and where `probe`
    came from. ``probe:main`` is a function in ``probe/__init__.py`` and also the name
    of a submodule: console-script semantics call the function."""
    project = tmp_path_factory.mktemp("probe")
    init = (
        "import os, sys\n"
        "def main():\n"
        "    mask = os.umask(0)\n"
        "    print(f'umask {mask:03o} from {__file__} path0 {sys.path[0]}')\n"
    )
    files = {"probe/__init__.py": init, "probe/main.py": "print('the submodule ran')\n"}
    recipe = zipapp_project(project, "probe", files)
    out = project / "dist"
    buildkit("build", recipe, "--out", out, "--cache-dir", cache_dir)
    return out


def run_app(app: Path, home: Path, *, umask: str = "002", env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    # XDG_CACHE_HOME too: pex puts its cache there when set (a fresh-machine run of the
    # suite with its own cache folder found it there, not under this home)
    gone = ("PEX_ROOT", "SHIV_ROOT", "XDG_CACHE_HOME")
    clean = {k: v for k, v in os.environ.items() if k not in gone}
    return subprocess.run(["sh", "-c", f'umask {umask}; exec "$0"', app], capture_output=True,
                          text=True, check=False, timeout=120,
                          env={**clean, "HOME": str(home), **(env or {})})  # fmt: skip


@pytest.mark.parametrize("suffix", [".pex", ".pyz"])
def test_item13_zipapps_run_isolated_and_call_the_entry_as_a_console_script(
    probe_apps: Path, tmp_path: Path, suffix: str
) -> None:
    app = probe_apps / f"probe-1.0.0-linux-amd64{suffix}"
    hijack = tmp_path / "hijack"
    (hijack / "probe").mkdir(parents=True)
    (hijack / "probe" / "__init__.py").write_text("def main():\n    print('HIJACKED')\n")
    user_site = tmp_path / "home" / ".local" / "lib" / "python3.11" / "site-packages"
    user_site.mkdir(parents=True)
    (user_site / "evil.pth").write_text("import sys; print('USER SITE RAN', file=sys.stderr)\n")
    ran = run_app(app, tmp_path / "home", env={"PYTHONPATH": str(hijack)})
    assert ran.returncode == 0, ran.stderr
    assert "HIJACKED" not in ran.stdout and "USER SITE RAN" not in ran.stderr
    assert "the submodule ran" not in ran.stdout
    assert ran.stdout.startswith("umask 002 from "), ran.stdout  # the user's umask is back


def test_item13_shiv_falls_back_to_a_private_folder_when_home_is_not_writable(
    probe_apps: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home-is-a-file"
    home.write_text("")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    ran = run_app(probe_apps / "probe-1.0.0-linux-amd64.pyz", home, env={"TMPDIR": str(tmp)})
    assert ran.returncode == 0 and "Traceback" not in ran.stderr, ran.stderr
    root = tmp / f"shiv-{os.getuid()}"
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert f"from {root}/" in ran.stdout


def test_issue38_item6_a_planted_tmp_folder_does_not_stop_a_service_account(
    probe_apps: Path, tmp_path: Path
) -> None:
    """HOME cannot be written and another user made ``$TMPDIR/shiv-<uid>`` first (the
    owner cannot remove it from a sticky /tmp): the zipapp still starts, from a private
    folder, and says once how to choose one. ``$XDG_RUNTIME_DIR`` comes first."""
    if os.geteuid() != 0:
        pytest.skip("needs root to make folders of another user")
    home = tmp_path / "home-is-a-file"
    home.write_text("")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    tmp.chmod(0o1777)
    uid = os.getuid()
    planted = tmp / f"shiv-{uid}"
    planted.mkdir(mode=0o700)
    os.chown(planted, 65534, 65534)
    (tmp / f"shiv-{uid}-1").symlink_to(planted)
    (tmp / f"shiv-{uid}-2").mkdir()
    (tmp / f"shiv-{uid}-2").chmod(0o777)
    app = probe_apps / "probe-1.0.0-linux-amd64.pyz"
    ran = run_app(app, home, env={"TMPDIR": str(tmp)})
    assert ran.returncode == 0, ran.stderr
    (fresh,) = [p for p in tmp.glob(f"shiv-{uid}.*") if p.is_dir()]
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o700 and fresh.stat().st_uid == uid
    assert f"from {fresh}/" in ran.stdout
    assert f"extracting into {fresh} for this start; set SHIV_ROOT" in ran.stderr
    runtime = tmp_path / "run-user"
    runtime.mkdir(mode=0o700)
    ran = run_app(app, home, env={"TMPDIR": str(tmp), "XDG_RUNTIME_DIR": str(runtime)})
    assert ran.returncode == 0 and ran.stderr == "", ran.stderr
    assert f"from {runtime}/shiv/" in ran.stdout


@pytest.mark.parametrize("suffix", [".pex", ".pyz"])
def test_item14_extraction_folders_are_private_and_a_writable_one_is_refused(
    probe_apps: Path, tmp_path: Path, suffix: str
) -> None:
    app = probe_apps / f"probe-1.0.0-linux-amd64{suffix}"
    home = tmp_path / "home"
    home.mkdir()
    ran = run_app(app, home)  # umask 002: a group could write what it makes
    assert ran.returncode == 0, ran.stderr
    root = home / (".cache/pex" if suffix == ".pex" else ".shiv")
    if suffix == ".pex":  # venvs/<layout>/<hash>/<hash>
        (extracted,) = [p for p in root.glob("venvs/*/*/*") if (p / "PEX-INFO").is_file()]
    else:  # <file name>_<build id>
        (extracted,) = [p for p in root.glob("probe-1.0.0-linux-amd64.pyz_*") if p.is_dir()]
    # what the zipapp made is private, whatever the umask (what the program itself writes
    # later, e.g. __pycache__, is behind these)
    chain = [root, *reversed([p for p in extracted.parents if p.is_relative_to(root) and p != root]),
             extracted]  # fmt: skip
    assert {str(p): oct(stat.S_IMODE(p.stat().st_mode)) for p in chain} == {
        str(p): "0o700" for p in chain
    }
    # a folder on the way that the group can write (an older umask, a careless chmod)
    extracted.chmod(0o775)
    refused = run_app(app, home)
    assert refused.returncode == 126, refused.stderr
    assert f"{app.name}: {extracted} can be written by others" in refused.stderr
    extracted.chmod(0o700)
    root.chmod(0o700)
    os.chown(root, 1000, 1000)
    refused = run_app(app, home)
    assert refused.returncode == 126 and "belongs to another user (uid 1000)" in refused.stderr
