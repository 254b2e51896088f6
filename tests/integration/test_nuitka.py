"""Nuitka native binaries, built for real on this host, checked with checksec."""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from buildkit import onefile
from buildkit.hardening import DEFAULT_REQUIRE
from tests.conftest import RECIPES, SAMPLES, with_hardening
from tests.integration.conftest import buildkit, seed_compiler_caches
from tests.integration.test_build import HOST, check_hostmetrics, check_portcheck

pytestmark = pytest.mark.integration


def build_copy(
    recipe: Path,
    out: Path,
    cache: Path,
    *,
    seed_from: Path | None = None,
    extra: tuple[str | Path, ...] = (),
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Build a recipe copy's nuitka binary for this host; ``seed_from`` shares only its
    compiler caches (seed_compiler_caches), so Nuitka runs again but compiles fast."""
    if seed_from is not None:
        seed_compiler_caches(cache, seed_from)
    proc = buildkit(
        "build",
        recipe,
        "--format",
        "nuitka",
        "--target",
        HOST,
        "--out",
        out,
        "--cache-dir",
        cache,
        "--json",
        *extra,
        cwd=recipe.parents[1],
        env=env,
    )
    (artifact,) = json.loads(proc.stdout)["artifacts"]
    return dict(artifact)


@pytest.fixture
def private_home(tmp_path: Path) -> dict[str, str]:
    """Run binaries with their own HOME and cache, to see where they extract."""
    import os

    return {**os.environ, "HOME": str(tmp_path / "home"), "XDG_CACHE_HOME": str(tmp_path / "xdg")}


def test_binaries_behave_like_the_scripts(
    nuitka_build: dict[str, Any], private_home: dict[str, str], ports: tuple[int, int]
) -> None:
    dist = nuitka_build["dist"]
    check_portcheck(dist / f"portcheck-1.0.0-{HOST}", private_home, ports)
    check_hostmetrics(dist / f"hostmetrics-1.0.0-{HOST}", private_home)


def checksec(path: Path) -> dict[str, str]:
    out = subprocess.run(
        ["checksec", f"--file={path}", "--output=json"], capture_output=True, text=True, check=True
    ).stdout
    (report,) = json.loads(out).values()
    return report


@pytest.mark.parametrize("recipe", ["portcheck", "hostmetrics"])
def test_checksec_full_hardening(nuitka_build: dict[str, Any], recipe: str) -> None:
    """Debian's checksec and hardening-check agree: the onefile and the program inside."""
    artifact = nuitka_build[recipe]
    onefile = Path(artifact["path"])
    program = Path(artifact["payload"]) / f"{onefile.name}.bin"
    for binary in (onefile, program):
        report = checksec(binary)
        assert report["relro"] == "full", (binary, report)
        assert report["canary"] == "yes", (binary, report)
        assert report["nx"] == "yes", (binary, report)
        assert report["pie"] == "yes", (binary, report)
        assert report["fortify_source"] == "yes", (binary, report)
        hc = subprocess.run(
            ["hardening-check", str(binary)], capture_output=True, text=True, check=False
        )
        for line in (
            "Position Independent Executable: yes",
            "Stack protected: yes",
            "Fortify Source functions: yes",
            "Read-only relocations: yes",
            "Immediate binding: yes",
        ):
            assert line in hc.stdout, (binary, hc.stdout)


def test_unhardened_build_is_caught_by_checksec(
    nuitka_build: dict[str, Any], recipe_copy, tmp_path: Path, cache_dir: Path
) -> None:
    """The flags are what makes the difference: a policy with only "nx" gives a binary
    with no canary and no PIE (zig links with full RELRO unless told otherwise)."""
    recipe = recipe_copy("portcheck")
    toml = recipe / "recipe.toml"
    toml.write_text(with_hardening(toml.read_text(), '[hardening]\nrequire = ["nx"]'))
    artifact = build_copy(recipe, tmp_path / "d", tmp_path / "cache", seed_from=cache_dir)
    report = checksec(Path(artifact["path"]))
    assert report["canary"] == "no" and report["pie"] == "no", report
    full = checksec(Path(nuitka_build["portcheck"]["path"]))
    assert full["canary"] == "yes" and full["pie"] == "yes", full


def test_foreign_targets_skipped_when_not_asked_for(tmp_path: Path, cache_dir: Path) -> None:
    """With the recipe's default formats, nuitka for a foreign target is skipped and reported."""
    proc = buildkit(
        "build",
        RECIPES / "portcheck",
        "--target",
        "alpine-arm64",
        "--out",
        tmp_path / "d",
        "--cache-dir",
        cache_dir,
        "--json",
    )
    doc = json.loads(proc.stdout)
    assert sorted(a["format"] for a in doc["artifacts"]) == ["pex", "shiv"]
    (skipped,) = doc["skipped"]
    assert (skipped["target"], skipped["format"]) == ("alpine-arm64", "nuitka")
    assert "musl aarch64 host" in skipped["reason"]


def test_rebuild_from_another_folder_same_bytes(
    nuitka_build: dict[str, Any], recipe_copy, tmp_path: Path, cache_dir: Path
) -> None:
    """A copy of the recipe in another folder, another output folder, an empty action cache
    (only the compiler caches are shared, so the build runs Nuitka again): the same bytes.
    Under an empty $HOME, which the build leaves empty: every tool's cache (zig's objects
    too) is in the cache folder, where `--cache-dir` puts it, not in ~/.cache."""
    recipe = recipe_copy("portcheck")
    home, cache = tmp_path / "home", tmp_path / "cache"
    home.mkdir()
    env = {"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")}
    artifact = build_copy(recipe, tmp_path / "other", cache, seed_from=cache_dir, env=env)
    assert artifact["reused"] is False
    assert artifact["sha256"] == nuitka_build["portcheck"]["sha256"]
    assert sorted(str(p.relative_to(home)) for p in home.rglob("*")) == []
    assert any((cache / "tools" / "zig").iterdir())


def test_a_compressed_payload_is_smaller_audited_and_reproducible(
    nuitka_build: dict[str, Any], recipe_copy, tmp_path: Path, cache_dir: Path
) -> None:
    """compress = "zstd": a smaller binary that passes its checks (the build runs them),
    whose payload's native files the audit still finds inside and attributes, whose build
    info inspect still reads; rebuilt from another folder with an empty action cache
    (zstandard compresses on several threads), the same bytes."""
    recipe = recipe_copy("hostmetrics")
    toml = recipe / "recipe.toml"
    toml.write_text(toml.read_text().replace("\nnuitka = {}", '\nnuitka = { compress = "zstd" }'))
    out = tmp_path / "dist"
    first = build_copy(recipe, out, tmp_path / "cache", seed_from=cache_dir)
    binary = Path(first["path"])
    stored = nuitka_build["dist"] / binary.name
    assert binary.stat().st_size < 0.6 * stored.stat().st_size, (binary, stored)
    payload = onefile.read_payload(binary.read_bytes())  # a zstandard frame, inflated
    assert isinstance(payload, onefile.Payload) and payload.inflated is not None, payload
    info = json.loads(buildkit("inspect", binary, "--json").stdout)
    assert info["settings"]["compress"] == "zstd" and info["recipe"] == "hostmetrics"
    report = json.loads((out / "hostmetrics-1.0.0.hardening.json").read_text())
    inside = {f["path"].split("!", 1)[1]: f for f in report["files"] if "!" in f["path"]}
    assert f"{binary.name}.bin" in inside and inside[f"{binary.name}.bin"]["component"] == "own"
    psutil = [f for name, f in inside.items() if name.startswith("psutil/")]
    assert psutil and all(f["component"] == "wheel" for f in psutil), inside.keys()
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(recipe.parents[1], elsewhere)
    again = build_copy(elsewhere / "recipes" / "hostmetrics", tmp_path / "again",
                       tmp_path / "cache2", seed_from=cache_dir)  # fmt: skip
    assert again["reused"] is False and again["sha256"] == first["sha256"]


def test_inspect_checksums_manifest(nuitka_build: dict[str, Any]) -> None:
    dist = nuitka_build["dist"]
    binary = dist / f"hostmetrics-1.0.0-{HOST}"
    info = json.loads(buildkit("inspect", binary, "--json").stdout)
    assert (info["recipe"], info["format"], info["target"]) == ("hostmetrics", "nuitka", HOST)
    assert "-fstack-protector-strong" in info["settings"]["cflags"]
    assert "-Wl,-z,relro,-z,now" in info["settings"]["ldflags"]
    assert any(w.startswith("psutil-") for w in info["wheels"])
    subprocess.run(
        ["sha256sum", "-c", "--strict", "SHA256SUMS"], cwd=dist, check=True, capture_output=True
    )
    listed = (dist / "SHA256SUMS").read_text()
    assert f"  {binary.name}\n" in listed and f"  portcheck-1.0.0-{HOST}\n" in listed
    entry = {a["name"]: a for a in json.loads((dist / "manifest.json").read_text())["artifacts"]}[
        binary.name
    ]
    assert entry["format"] == "nuitka"
    assert entry["inputs"]["settings"]["mode"] == "onefile"
    assert f"{binary.name}.bin" in entry["payload"]
    assert any(name.startswith("psutil/") and name.endswith(".so") for name in entry["payload"])
    # the toolchain's static libpython is linked in (no libpython in the payload)
    assert entry["inputs"]["settings"]["libpython"] == "static"
    assert not any(name.startswith("libpython") for name in entry["payload"])
    # the SBOM names what is compiled into the binary: the toolchain's CPython, not the
    # one running buildkit; the whole release verifies
    version = entry["inputs"]["tools"]["toolchain/cpython-3.11"].split()[0]
    assert version != platform.python_version() or version == "3.11.2"
    sbom = json.loads((dist / "hostmetrics-1.0.0.cdx.json").read_text())
    refs = {c["bom-ref"]: c for c in sbom["components"]}
    assert refs[f"interpreter:cpython@{version}"]["type"] == "application"
    assert f"runtime:nuitka@{entry['inputs']['tools']['nuitka']}" in refs
    assert buildkit("verify", dist).returncode == 0


def test_onefile_extracts_once_per_user_and_repairs_changes(
    nuitka_build: dict[str, Any], private_home: dict[str, str]
) -> None:
    binary = nuitka_build["dist"] / f"portcheck-1.0.0-{HOST}"
    assert (
        subprocess.run(
            [binary, "--help"], env=private_home, capture_output=True, check=False
        ).returncode
        == 0
    )
    (folder,) = (Path(private_home["XDG_CACHE_HOME"]) / "buildkit" / "run").iterdir()
    assert folder.name.startswith(binary.name + "-")
    assert folder.stat().st_mode & 0o777 == 0o700
    assert (folder.parent.stat().st_mode & 0o022) == 0  # not group/world-writable
    info = folder / "__buildkit__.json"
    good = info.read_bytes()
    program = folder / f"{binary.name}.bin"
    program_bytes = program.read_bytes()
    info.write_bytes(b"changed by someone else")
    program.write_bytes(b"#!/bin/sh\necho tampered\n")
    proc = subprocess.run(
        [binary, "--help"], env=private_home, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0 and "tampered" not in proc.stdout
    assert info.read_bytes() == good and program.read_bytes() == program_bytes


def test_onefile_refuses_an_extraction_folder_others_could_write(
    nuitka_build: dict[str, Any], private_home: dict[str, str], tmp_path: Path
) -> None:
    """The guard compiled into the bootstrap (onefile_guard.c) runs before Nuitka
    extracts anything: a folder another user owns, one writable by others, or a symbolic
    link in its place stops the binary with exit code 126 and a message naming it."""
    import os

    binary = nuitka_build["dist"] / f"portcheck-1.0.0-{HOST}"

    def start() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [binary, "--help"], env=private_home, capture_output=True, text=True, check=False
        )

    assert start().returncode == 0
    (folder,) = (Path(private_home["XDG_CACHE_HOME"]) / "buildkit" / "run").iterdir()

    def refused(why: str) -> None:
        proc = start()
        assert proc.returncode == 126 and proc.stdout == "", proc
        assert f"{binary.name}: error: refusing to start: the extraction folder " in proc.stderr
        assert why in proc.stderr

    folder.chmod(0o777)
    refused(f"{folder} is writable by others (mode 0777)")
    folder.chmod(0o700)
    if os.geteuid() == 0:
        os.chown(folder.parent, 4242, 4242)
        refused(f"{folder.parent} is owned by uid 4242")
        os.chown(folder.parent, 0, 0)
    decoy = tmp_path / "decoy"
    decoy.mkdir(mode=0o700)
    shutil.rmtree(folder)
    folder.symlink_to(decoy)
    refused(f"{folder} is a symbolic link")
    assert list(decoy.iterdir()) == []  # nothing was extracted through the link
    folder.unlink()  # what the hint says; the next start extracts again
    assert start().returncode == 0 and folder.is_dir() and not folder.is_symlink()


def test_onefile_without_proc_says_so_instead_of_aborting(
    nuitka_build: dict[str, Any], private_home: dict[str, str]
) -> None:
    """Issue 38 item 7: in a root without /proc mounted the bootstrap aborted (SIGABRT,
    exit 134, no message)."""
    import os

    if os.geteuid() != 0:
        pytest.skip("needs root to unmount /proc in a mount namespace")
    binary = nuitka_build["dist"] / f"portcheck-1.0.0-{HOST}"
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         'umount -l /proc && exec "$0" --help', binary],
        env=private_home, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 126 and proc.stdout == "", proc
    assert f"{binary.name}: error: refusing to start: /proc/self/exe cannot be read" in (
        proc.stderr
    )


def test_standalone_mode_ships_a_folder(
    recipe_copy,
    tmp_path: Path,
    cache_dir: Path,
    ports: tuple[int, int],
    private_home: dict[str, str],
) -> None:
    import tarfile

    recipe = recipe_copy("portcheck")
    toml = recipe / "recipe.toml"
    text = toml.read_text()
    assert "nuitka = { exclude" in text
    toml.write_text(text.replace("nuitka = { exclude", 'nuitka = { mode = "standalone", exclude'))
    artifact = build_copy(recipe, tmp_path / "d", cache_dir)
    archive = Path(artifact["path"])
    assert archive.name == f"portcheck-1.0.0-{HOST}.tar.gz"
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        assert {m.name.split("/")[0] for m in members} == {archive.name.removesuffix(".tar.gz")}
        assert {m.mtime for m in members} == {315532800} and {m.uid for m in members} == {0}
        tar.extractall(tmp_path / "x", filter="data")
    folder = tmp_path / "x" / archive.name.removesuffix(".tar.gz")
    check_portcheck(folder / folder.name, private_home, ports)
    info = json.loads(buildkit("inspect", archive, "--json").stdout)
    assert (info["format"], info["settings"]["mode"]) == ("nuitka", "standalone")


def test_unchanged_rebuild_runs_no_compiler(nuitka_build: dict[str, Any], cache_dir: Path) -> None:
    proc = buildkit(
        "build",
        RECIPES / "portcheck",
        "--format",
        "nuitka",
        "--target",
        HOST,
        "--out",
        nuitka_build["dist"],
        "--cache-dir",
        cache_dir,
        "--json",
        "-v",
    )
    (artifact,) = json.loads(proc.stdout)["artifacts"]
    assert artifact["reused"] is True
    assert artifact["sha256"] == nuitka_build["portcheck"]["sha256"]
    assert "-m nuitka" not in proc.stderr  # -v logs every command run
    assert Path(artifact["payload"]).is_dir()


def test_hardening_gate_fails_the_build_and_waivers_expire(
    nuitka_build: dict[str, Any], recipe_copy, tmp_path: Path, cache_dir: Path
) -> None:
    """The gate on a real binary, without compiling it again: requiring "stripped" too (a
    policy that changes no compiler flag, so the session's build is reused from the
    cache) fails on the toolchain's interpreter files packed in the binary (in the default
    scope; their symbol tables are kept). The build fails with exit code 1 and publishes
    nothing; waivers of exactly those failures let it pass, shown in the report; expired
    ones do not, and the earlier release stays as it was. (The gate's logic on every
    policy is tested without a build in tests/unit/test_release_stage.py.)"""
    recipe = recipe_copy("portcheck")
    toml = recipe / "recipe.toml"
    require = json.dumps([*DEFAULT_REQUIRE, "stripped"])  # the default's flags: same build
    base = with_hardening(toml.read_text(), f"[hardening]\nrequire = {require}")
    toml.write_text(base)
    out = tmp_path / "dist"
    args = ("build", recipe, "--format", "nuitka", "--target", HOST, "--out", out,
            "--cache-dir", cache_dir, "-v")  # fmt: skip
    failed = buildkit(*args, cwd=recipe.parents[1], check=False)
    binary = f"portcheck-1.0.0-{HOST}"
    assert failed.returncode == 1, failed.stderr
    assert "-m nuitka" not in failed.stderr  # reused: the policy changed no flag
    assert "nothing was published" in failed.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        f"portcheck-1.0.0.rejected.hardening.{ext}" for ext in ("html", "json", "md", "sarif")
    ]
    rejected = json.loads((out / "portcheck-1.0.0.rejected.hardening.json").read_text())
    failing = {
        (v["path"], v["requirement"])
        for v in rejected["policy"]["verdicts"]
        if v["outcome"] == "fail"
    }
    assert failing and all(path.startswith(f"{binary}!") for path, _ in failing), failing
    checks = sorted({req for _, req in failing})

    waiver = (
        f'[[hardening.waivers]]\npath = "{binary}!*"\nchecks = {json.dumps(checks)}\n'
        'reason = "the interpreter keeps its symbol tables"\nexpires = 2099-12-31\n'
    )
    toml.write_text(base + waiver)
    passed = buildkit(*args, "--json", cwd=recipe.parents[1])
    doc = json.loads(passed.stdout)
    assert doc["artifacts"][0]["reused"]
    gate = doc["hardening"]["gate"]
    waived = {(v["path"], v["requirement"]) for v in gate["verdicts"] if v["outcome"] == "waived"}
    assert waived == failing
    report = json.loads((out / "portcheck-1.0.0.hardening.json").read_text())
    assert report["policy"]["passed"]
    assert "### Waived" in (out / "portcheck-1.0.0.hardening.md").read_text()
    assert not list(out.glob("*.rejected.*"))
    listed = (out / "SHA256SUMS").read_text()
    assert "  portcheck-1.0.0.hardening.html\n" in listed and f"  {binary}\n" in listed

    toml.write_text(base + waiver.replace("2099-12-31", "2020-01-01"))
    expired = buildkit(*args, cwd=recipe.parents[1], check=False)
    assert expired.returncode == 1
    assert "expired on 2020-01-01" in (out / "portcheck-1.0.0.rejected.hardening.md").read_text()
    assert (out / "SHA256SUMS").read_text() == listed  # the earlier release is as it was


def _objdump_newest_glibc(path: Path) -> tuple[int, ...]:
    """The newest GLIBC_ version in ``objdump -T`` (binutils, not LIEF)."""
    out = subprocess.run(
        ["objdump", "-T", str(path)], capture_output=True, text=True, check=True
    ).stdout
    import re

    found = {tuple(int(p) for p in v.split(".")) for v in re.findall(r"GLIBC_(\d+(?:\.\d+)+)", out)}
    assert found, out[:2000]
    return max(found)


@pytest.mark.parametrize("recipe", [*SAMPLES, "logwatch"])
def test_binaries_need_at_most_glibc_2_17_and_run_on_debian_11(
    nuitka_build: dict[str, Any], recipe: str, tmp_path: Path, cache_dir: Path
) -> None:
    """Built with the hermetic toolchain (glibc 2.17 baseline): objdump and buildkit's
    audit agree on the newest glibc symbol each ELF file needs, and the recipe's checks
    passed here and in the Debian 11 root (glibc 2.31). logwatch too, whose own C
    extension is compiled into a wheel first."""
    if recipe in nuitka_build:
        artifact, manifest = nuitka_build[recipe], nuitka_build["manifest"]
    else:
        import os

        hosts = (
            os.environ.get("BUILDKIT_TEST_HOST_CACHE")
            or Path.home() / ".cache" / "buildkit-test-hosts"
        )
        proc = buildkit(
            "build", RECIPES / recipe, "--format", "nuitka", "--target", "linux-amd64",
            "--out", tmp_path / "d", "--cache-dir", cache_dir, "--json",
            env={"BUILDKIT_HOSTS_DIR": str(Path(hosts) / "hosts")},
        )  # fmt: skip
        (artifact,) = json.loads(proc.stdout)["artifacts"]
        manifest = json.loads((tmp_path / "d" / "manifest.json").read_text())
    onefile = Path(artifact["path"])
    payload = Path(artifact["payload"])
    elves = [
        onefile,
        *(
            p
            for p in sorted(payload.rglob("*"))
            if p.is_file() and p.read_bytes()[:4] == b"\x7fELF"
        ),
    ]
    assert len(elves) > 2
    audit = json.loads(buildkit("audit", *elves, "--json").stdout)
    by_path = {f["path"]: f for f in audit["files"]}
    for elf in elves:
        newest = _objdump_newest_glibc(elf)
        assert newest <= (2, 17), (elf, newest)
        check = by_path[str(elf)]["checks"]["glibc"]
        assert check["state"] == "pass", (elf, check)
        assert f"GLIBC_{'.'.join(map(str, newest))}" in check["evidence"], (elf, check, newest)
    (record,) = [a for a in manifest["artifacts"] if a["name"] == onefile.name]
    runs = record["checks"]["runs"]
    wheres = [r["where"] for r in runs]
    assert any(w.startswith("root linux-amd64-bullseye") for w in wheres), wheres
    assert record["checks"]["status"] == "passed", record["checks"]
    settings = record["inputs"]["settings"]
    assert "buildkit toolchain" in settings["interpreter"] and settings["toolchain"]
    assert "gcc" not in record["inputs"]["tools"]
    assert record["inputs"]["tools"]["toolchain/openssl"].startswith("3.5.7 sha256:")


@pytest.mark.parametrize("recipe", ["portcheck", "hostmetrics"])
def test_toolchain_interpreter_passes_the_gate_and_checksec_agrees(
    nuitka_build: dict[str, Any], recipe: str, tmp_path: Path
) -> None:
    """The default policy's scope covers the interpreter the toolchain built: the audit
    gate passes on the binary, and Debian's checksec agrees file by file on its payload
    (full RELRO and a canary, where a host's interpreter had partial RELRO and none)."""
    artifact = nuitka_build[recipe]
    onefile = Path(artifact["path"])
    payload = Path(artifact["payload"])
    policy = tmp_path / "policy.toml"  # the default policy, written out
    required = ", ".join(f'"{r}"' for r in DEFAULT_REQUIRE)
    policy.write_text(f'[hardening]\nrequire = [{required}]\nscope = "own"\n')
    doc = json.loads(buildkit("audit", onefile, "--policy", policy, "--json").stdout)
    assert doc["policy"]["passed"] is True, doc["policy"]
    inside = {f["member"]: f for f in doc["files"] if f["member"]}
    toolchain = {m: f for m, f in inside.items() if f["component"] == "toolchain"}
    assert toolchain, sorted((m, f["component"]) for m, f in inside.items())
    assert not [m for m, f in inside.items() if f["component"] == "system"], inside.keys()
    for member, found in toolchain.items():
        report = checksec(payload / member)
        assert report["relro"] == "full", (member, report)
        assert found["checks"]["relro"]["state"] == "pass", (member, found)
        ours = found["checks"]["canary"]["state"] == "pass"
        assert (report["canary"] == "yes") == ours, (member, report, found["checks"]["canary"])
        assert ours, (member, found["checks"]["canary"])


def _other_python() -> Path | None:
    """A CPython other than the one running the tests (3.12 preferred), or None."""
    import sys

    candidates = [shutil.which(n) for n in ("python3.12", "python3.13")]
    # pyenv's interpreters, which its shims only run when selected
    candidates += sorted(
        str(p) for p in Path.home().glob(".pyenv/versions/3.1[23]*/bin/python3.1[23]")
    )
    for found in candidates:
        if found is None:
            continue
        proc = subprocess.run(
            [found, "-c", "import sys; print(sys.executable, '%d.%d' % sys.version_info[:2])"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if proc.returncode == 0:
            exe, version = proc.stdout.split()
            if version != f"{sys.version_info[0]}.{sys.version_info[1]}":
                return Path(exe)
    return None


def test_same_binary_whatever_python_runs_buildkit(
    nuitka_build: dict[str, Any], recipe_copy, tmp_path: Path, cache_dir: Path
) -> None:
    """The toolchain's interpreter builds the binary, not the one running buildkit: run
    buildkit under another Python (its own venv with the pinned toolkit) from another
    folder and cache, and portcheck's binary has the same sha256."""
    other = _other_python()
    if other is None:
        pytest.skip("no python3.12 or python3.13 on this machine")
    from buildkit.toolchain.venv import toolkit_venv

    venv = tmp_path / "venv-other"  # the pinned runtime toolkit, zig included
    toolkit_venv(other, venv, what=f"a toolkit venv on {other}")
    recipe = recipe_copy("portcheck")
    cache = tmp_path / "cache"
    seed_compiler_caches(cache, cache_dir)  # the objects zig compiled from the same sources
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "buildkit", "build", str(recipe), "--format",
         "nuitka", "--target", HOST, "--out", str(tmp_path / "d"), "--cache-dir", str(cache),
         "--json"],
        capture_output=True, text=True, check=False, cwd=recipe.parents[1],
        env={**__import__("os").environ, "CI": "true"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    (artifact,) = json.loads(proc.stdout)["artifacts"]
    assert artifact["sha256"] == nuitka_build["portcheck"]["sha256"]


def test_sbom_lists_the_toolchain_inside_the_binary(nuitka_build: dict[str, Any]) -> None:
    """The SBOM of a Nuitka release names CPython, OpenSSL and every library the toolchain
    compiled into the binary, with the version and sha256 of its source archive, and zig;
    CycloneDX's own validator (1.6, strict) accepts it."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    from buildkit import targets, toolchain

    text = (nuitka_build["dist"] / "hostmetrics-1.0.0.cdx.json").read_text()
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    components = {c["bom-ref"]: c for c in json.loads(text)["components"]}
    for pinned in toolchain.spec_for(targets.get("linux-amd64")).pinned:
        project = pinned.source.name.split("-", 1)[0]
        found = components.get(f"toolchain:{project}@{pinned.version}")
        assert found, (project, sorted(components))
        assert found["hashes"][0]["content"] == pinned.source.sha256
        assert found["purl"] == f"pkg:generic/{project}@{pinned.version}"
    assert any(ref.startswith("compiler:zig@") for ref in components)
    assert components["interpreter:cpython@3.11.2"]["version"] == "3.11.2"
