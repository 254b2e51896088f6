"""Foreign targets verified here: aarch64 artifacts run on emulated hosts (QEMU user mode),
and native aarch64 binaries built on an emulated builder.

The hosts' roots are kept between runs on one machine ($BUILDKIT_TEST_HOST_CACHE, default
~/.cache/buildkit-test-hosts): the first run makes them (several minutes), later runs
check and reuse them. Select these tests with ``-m emulated``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RECIPES, SAMPLES
from tests.integration.conftest import buildkit

pytestmark = [pytest.mark.integration, pytest.mark.emulated]

HOST_CACHE = Path(
    os.environ.get("BUILDKIT_TEST_HOST_CACHE") or Path.home() / ".cache" / "buildkit-test-hosts"
)
ARM_HOSTS = ("linux-arm64", "alpine-arm64")


@pytest.fixture(scope="session")
def host_cache() -> Path:
    HOST_CACHE.mkdir(parents=True, exist_ok=True)
    return HOST_CACHE


@pytest.fixture(scope="session")
def hosts(host_cache: Path) -> dict[str, Path]:
    """Both emulated hosts, made (or checked and reused) by the real command."""
    roots = {}
    for name in ARM_HOSTS:
        proc = buildkit("host", "create", name, "--cache-dir", host_cache, "--json")
        roots[name] = Path(json.loads(proc.stdout)["root"])
    return roots


# --- what each sample is asked, and what of its answer must agree across targets -------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        status = 200 if self.path.startswith("/ok") else 503
        body = b"status: ok\n" if status == 200 else b"down\n"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def peers() -> Iterator[dict[str, str]]:
    """A listening port, a closed port and an HTTP server on loopback (the emulated hosts
    share this machine's network)."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        closed_port = closed.getsockname()[1]
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        yield {
            "open": f"127.0.0.1:{listening.getsockname()[1]}",
            "closed": f"127.0.0.1:{closed_port}",
            "http": f"http://127.0.0.1:{server.server_address[1]}",
        }
    server.shutdown()
    server.server_close()


def sample_args(recipe: str, peers: dict[str, str]) -> list[str]:
    return {
        "portcheck": ["--json", peers["open"], peers["closed"]],
        "healthcheck": ["--json", f"{peers['http']}/ok", f"{peers['http']}/down"],
        "hostmetrics": ["--json", "--interval", "0", "--max-disk", "0"],
    }[recipe]


def comparable(recipe: str, stdout: str) -> Any:
    """The part of a sample's JSON answer that does not depend on timing or load."""
    doc = json.loads(stdout)
    if recipe == "hostmetrics":
        return {
            "keys": sorted(doc),
            "cpu_count": doc["cpu_count"],
            "memory_total": doc["memory_total"],
            "disks": [d["path"] for d in doc["disks"]],
            "problems": [p.split()[:2] for p in doc["problems"]],
        }
    return [{k: v for k, v in entry.items() if k != "millis"} for entry in doc]


def run_native(artifact: Path, args: list[str], env: dict[str, str]) -> tuple[int, str]:
    proc = subprocess.run([artifact, *args], capture_output=True, text=True, env=env, check=False)
    return proc.returncode, proc.stdout


def run_on(
    host: str, artifact: Path, args: list[str], cache: Path
) -> subprocess.CompletedProcess[str]:
    return buildkit("run-on", host, artifact, "--cache-dir", cache, "--", *args, check=False)


# --- the zipapps of every sample, on both arm64 hosts ---------------------------------------


@pytest.mark.parametrize("host", ARM_HOSTS)
@pytest.mark.parametrize("recipe", SAMPLES)
def test_zipapps_run_on_the_emulated_host_as_on_amd64(
    host: str,
    recipe: str,
    *,
    hosts: dict[str, Path],
    host_cache: Path,
    sample_dist: Path,
    run_env: dict[str, str],
    peers: dict[str, str],
) -> None:
    args = sample_args(recipe, peers)
    code, out = run_native(sample_dist / f"{recipe}-1.0.0-linux-amd64.pex", args, run_env)
    assert code in (0, 1), out
    want = comparable(recipe, out)
    for suffix in (".pex", ".pyz"):
        proc = run_on(host, sample_dist / f"{recipe}-1.0.0-{host}{suffix}", args, host_cache)
        assert proc.returncode == code, proc.stderr[-3000:]
        assert comparable(recipe, proc.stdout) == want, proc.stdout


@pytest.mark.parametrize("recipe", ["portcheck", "hostmetrics"])
def test_zipapps_pass_their_checks_on_the_emulated_hosts(
    recipe: str, hosts: dict[str, Path], host_cache: Path, tmp_path: Path
) -> None:
    """A build whose cache holds the emulated hosts runs the recipe's checks there."""
    out = tmp_path / "dist"
    buildkit(
        "build", RECIPES / recipe, "--target", "linux-arm64", "--target", "alpine-arm64",
        "--format", "pex", "--format", "shiv", "--out", out, "--cache-dir", host_cache,
    )  # fmt: skip
    doc = json.loads((out / "manifest.json").read_text())
    assert len(doc["artifacts"]) == 4
    for entry in doc["artifacts"]:
        checks = entry["checks"]
        assert checks["status"] == "passed", (entry["name"], checks)
        (run,) = checks["runs"]
        assert run["where"].startswith(f"emulated host {entry['target']} ("), run["where"]
        assert len(run["results"]) == 3 and all(r["passed"] for r in run["results"])


def test_the_hosts_are_what_they_stand_for(
    hosts: dict[str, Path], host_cache: Path, tmp_path: Path
) -> None:
    """The interpreter each host runs: aarch64 glibc Python 3.11, aarch64 musl Python 3.12."""
    probe = tmp_path / "probe"
    probe.write_text(
        "#!/usr/bin/env python3\nimport json, platform, sys, sysconfig\n"
        "print(json.dumps({'machine': platform.machine(), 'version': '%d.%d' % sys.version_info[:2],"
        " 'libc': platform.libc_ver()[0], 'soabi': sysconfig.get_config_var('SOABI'),"
        " 'zlib': __import__('zlib').ZLIB_VERSION, 'ctypes': __import__('ctypes').sizeof(__import__('ctypes').c_void_p)}))\n"
    )
    probe.chmod(0o755)
    seen = {}
    for name in ARM_HOSTS:
        proc = run_on(name, probe, [], host_cache)
        assert proc.returncode == 0, proc.stderr
        seen[name] = json.loads(proc.stdout)
    assert seen["linux-arm64"]["machine"] == seen["alpine-arm64"]["machine"] == "aarch64"
    assert seen["linux-arm64"]["version"] == "3.11" and seen["linux-arm64"]["libc"] == "glibc"
    assert seen["alpine-arm64"]["version"] == "3.12"
    # CPython 3.12 names its ABI linux-gnu on musl too (3.13 says linux-musl), as on Alpine
    assert seen["alpine-arm64"]["soabi"].startswith("cpython-312-aarch64-linux")
    assert seen["alpine-arm64"]["libc"] != "glibc"
    assert seen["alpine-arm64"]["ctypes"] == 8


def test_musl_root_has_no_glibc(hosts: dict[str, Path]) -> None:
    root = hosts["alpine-arm64"]
    assert (root / "lib" / "ld-musl-aarch64.so.1").is_file()
    assert not list(root.glob("lib*/ld-linux*")) and not list(root.glob("usr/lib*/**/libc.so.6"))
    interp = subprocess.run(
        ["aarch64-linux-gnu-readelf", "-l", root / "usr" / "bin" / "python3.12"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "/lib/ld-musl-aarch64.so.1" in interp


def test_host_create_reuses_a_good_root(hosts: dict[str, Path], host_cache: Path) -> None:
    proc = buildkit("host", "create", "linux-arm64", "--cache-dir", host_cache)
    assert "reusing" in proc.stderr
    status = buildkit("host", "status", "--cache-dir", host_cache, "--json")
    assert all(h["ok"] for h in json.loads(status.stdout))


def test_run_on_refuses_an_artifact_of_another_target(
    hosts: dict[str, Path], host_cache: Path, sample_dist: Path
) -> None:
    proc = run_on(
        "linux-arm64", sample_dist / "portcheck-1.0.0-linux-amd64.pex", ["--help"], host_cache
    )
    assert proc.returncode == 2
    assert (
        "was built for linux-amd64; the host linux-arm64 runs linux-arm64 artifacts" in proc.stderr
    )


def test_run_on_leaves_the_root_unchanged(
    hosts: dict[str, Path], host_cache: Path, tmp_path: Path
) -> None:
    script = tmp_path / "writer"
    script.write_text("#!/bin/sh\necho changed > /etc/buildkit-marker\ncat /etc/buildkit-marker\n")
    script.chmod(0o755)
    proc = run_on("linux-arm64", script, [], host_cache)
    assert proc.returncode == 0 and proc.stdout == "changed\n"
    assert not (hosts["linux-arm64"] / "etc" / "buildkit-marker").exists()


# --- clear errors ---------------------------------------------------------------------------


def test_not_root_is_refused(host_cache: Path, sample_dist: Path) -> None:
    """A real non-root user: a user namespace mapping this uid to 1000."""
    for args in (
        ["host", "create", "linux-arm64", "--cache-dir", str(host_cache)],
        ["run-on", "linux-arm64", str(sample_dist / "portcheck-1.0.0-linux-arm64.pex"),
         "--cache-dir", str(host_cache)],
    ):  # fmt: skip
        proc = subprocess.run(
            ["unshare", "--user", "--map-user=1000", "--map-group=1000",
             sys.executable, "-m", "buildkit", *args],
            capture_output=True, text=True, cwd=RECIPES.parent, check=False,
        )  # fmt: skip
        assert proc.returncode == 2, proc.stderr
        assert "needs root" in proc.stderr and "running as uid 1000" in proc.stderr


def test_missing_binfmt_misc_is_explained(host_cache: Path, sample_dist: Path) -> None:
    """In a mount namespace whose /proc/sys/fs is an empty read-only tmpfs, binfmt_misc is
    gone and cannot be mounted (as in an unprivileged container)."""
    cmd = 'mount -t tmpfs -o ro,size=1k none /proc/sys/fs && exec "$@"'
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", cmd, "sh",
         sys.executable, "-m", "buildkit", "run-on", "linux-arm64",
         str(sample_dist / "portcheck-1.0.0-linux-arm64.pex"), "--cache-dir", str(host_cache)],
        capture_output=True, text=True, cwd=RECIPES.parent, check=False,
    )  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    assert "binfmt_misc is not available: /proc/sys/fs/binfmt_misc is not mounted" in proc.stderr
    assert "hint:" in proc.stderr


def test_a_host_not_made_yet_is_a_usage_error(
    hosts: dict[str, Path], tmp_path: Path, sample_dist: Path
) -> None:
    artifact = sample_dist / "portcheck-1.0.0-linux-arm64.pex"
    proc = run_on("linux-arm64", artifact, ["--help"], tmp_path / "empty-cache")
    assert proc.returncode == 2, proc.stderr
    assert "the emulated host linux-arm64 does not exist yet" in proc.stderr
    assert "buildkit host create linux-arm64" in proc.stderr


def test_broken_root_is_refused(hosts: dict[str, Path], tmp_path: Path, sample_dist: Path) -> None:
    """A copy of the root (hard links) without its seal; then, sealed with this cache's
    key as a build would, one whose interpreter is gone and one whose interpreter is
    garbage: run-on refuses each, naming what is wrong and how to make it again."""
    from buildkit import hosts as host_specs
    from buildkit.cache import Cache
    from buildkit.hosts import store

    cache = tmp_path / "cache"
    folder = cache / "hosts" / "linux-arm64"
    folder.mkdir(parents=True)
    subprocess.run(["cp", "-al", hosts["linux-arm64"], folder / "root"], check=True)
    shutil.copy(hosts["linux-arm64"].parent / "host.json", folder / "host.json")
    artifact = sample_dist / "portcheck-1.0.0-linux-arm64.pex"
    proc = run_on("linux-arm64", artifact, ["--help"], cache)
    assert proc.returncode == 3, proc.stderr  # buildkit's own error, not the program's 1
    assert f"the emulated host linux-arm64 at {folder} is broken" in proc.stderr
    assert "has no seal" in proc.stderr and "host create linux-arm64 --force" in proc.stderr

    def seal() -> None:
        spec = host_specs.get("linux-arm64")
        Cache(root=cache).seal_tree(folder / "root", store._kind(spec))

    python = folder / "root" / "usr" / "bin" / "python3.11"
    python.unlink()
    seal()
    proc = run_on("linux-arm64", artifact, ["--help"], cache)
    assert proc.returncode == 3, proc.stderr
    assert f"the emulated host linux-arm64 at {folder} is broken" in proc.stderr
    assert "buildkit host create linux-arm64 --force" in proc.stderr
    python.write_bytes(b"\x7fELF garbage")
    python.chmod(0o755)
    proc = run_on("linux-arm64", artifact, ["--help"], cache)
    assert proc.returncode == 3 and "its files changed since it was made" in proc.stderr
    seal()
    proc = run_on("linux-arm64", artifact, ["--help"], cache)
    assert proc.returncode == 3 and "does not" in proc.stderr, proc.stderr
    (folder / "host.json").unlink()
    proc = run_on("linux-arm64", artifact, ["--help"], cache)
    assert "host.json is missing" in proc.stderr


def test_failed_debootstrap_keeps_nothing(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    proc = buildkit(
        "host", "create", "linux-arm64", "--cache-dir", cache,
        "--mirror", "http://127.0.0.1:9/debian", check=False,
    )  # fmt: skip
    assert proc.returncode == 3
    assert "debootstrap could not make the linux-arm64 root" in proc.stderr
    assert "127.0.0.1:9" in proc.stderr and "hint:" in proc.stderr
    assert not (cache / "hosts" / "linux-arm64").exists()
    # nothing but this process's owner lock (tmp/owner-<id>.lock, swept by the next one)
    assert [p.name for p in (cache / "tmp").iterdir() if not p.name.startswith("owner-")] == []


# --- the arm64 toolchains: every canary compared against libc's random guard ---------------


@pytest.mark.parametrize("target", ["linux-arm64", "alpine-arm64"])
def test_arm64_toolchain_modules_take_the_canary_guard_from_libc(
    target: str, host_cache: Path
) -> None:
    """_ctypes and _decimal use long double arithmetic, which on aarch64 only compiler-rt
    has; zig's compiler-rt would bring its own constant __stack_chk_guard with it. Linked
    with the toolchain's compiler-rt instead, they import libc's (readelf says so), and the
    audit passes the canary of every module and of the interpreter."""
    buildkit("toolchain", "build", "--target", target, "--cache-dir", host_cache)
    status = buildkit("toolchain", "status", "--target", target, "--json")
    (state,) = json.loads(status.stdout)
    folder = Path(state["folder"])
    assert (folder / "compiler-rt" / "libcompiler_rt.a").is_file()
    dynload = next((folder / "python" / "lib").glob("python3.*/lib-dynload"))
    for name in ("_ctypes", "_decimal"):
        (module,) = dynload.glob(f"{name}.*.so")

        def readelf(option: str, module: Path = module) -> str:
            return subprocess.run(
                ["aarch64-linux-gnu-readelf", option, "-W", module], check=True,
                capture_output=True, text=True,
            ).stdout  # fmt: skip

        assert "__multf3" in readelf("-s"), module  # compiler-rt is linked in
        # and the canary's guard is libc's: an undefined dynamic symbol, bound at load
        assert re.search(
            r"GLOBAL +DEFAULT +UND __stack_chk_guard(@|$)", readelf("--dyn-syms"), re.M
        )
    python = next((folder / "python" / "bin").glob("python3.*[0-9]"))
    files = json.loads(buildkit("audit", dynload, python, "--format", "json", check=False).stdout)[
        "files"
    ]
    assert len(files) > 30
    for entry in files:
        assert entry["checks"]["canary"]["state"] == "pass", entry


# --- a native aarch64 binary from the emulated builder --------------------------------------


@pytest.fixture(scope="module")
def arm_nuitka(
    hosts: dict[str, Path], host_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    return build_on_builder("linux-arm64", host_cache, tmp_path_factory.mktemp("arm-nuitka"))


def build_on_builder(target: str, host_cache: Path, out: Path) -> Path:
    """portcheck's Nuitka binary for ``target``, built on that target's emulated builder."""
    done = buildkit(
        "build", RECIPES / "portcheck", "--target", target, "--format", "nuitka",
        "--builder", target, "--out", out, "--cache-dir", host_cache, "--json",
    )  # fmt: skip
    # --json: stdout is the report alone (the build inside the host reports to stderr)
    report = json.loads(done.stdout)
    assert report["builder"] == target and f"portcheck-1.0.0-{target}" in report["written"]
    return out


def test_builder_makes_a_verified_linux_arm64_binary(arm_nuitka: Path) -> None:
    binary = arm_nuitka / "portcheck-1.0.0-linux-arm64"
    assert binary.is_file()
    header = binary.read_bytes()[:20]
    assert header[:4] == b"\x7fELF" and header[18:20] == b"\xb7\x00"  # EM_AARCH64
    assert buildkit("verify", arm_nuitka).returncode == 0
    (entry,) = [
        a
        for a in json.loads((arm_nuitka / "manifest.json").read_text())["artifacts"]
        if a["name"] == binary.name
    ]
    assert entry["target"] == "linux-arm64" and entry["format"] == "nuitka"
    settings = entry["inputs"]["settings"]
    assert settings["libpython"] == "static"
    # the hermetic toolchain's interpreter, not the builder's Python and gcc
    assert settings["interpreter"].startswith("CPython 3.11.2 (buildkit toolchain, zig -target")
    assert "aarch64-linux-gnu.2.17" in settings["interpreter"], settings
    tools_used = entry["inputs"]["tools"]
    assert "gcc" not in tools_used and "zig" in tools_used, tools_used
    checks = entry["checks"]  # run by the build inside the builder, on its own machine
    assert checks["status"] == "passed", checks
    assert checks["runs"][0]["where"].startswith("this machine (linux aarch64")
    # and its parity proof, there too: every module of the lock imported by an aarch64
    # proof binary as by the builder's Python
    assert entry["parity"]["modules"] >= 2, entry["parity"]


def test_builder_binary_passes_the_aarch64_hardening_audit(arm_nuitka: Path) -> None:
    """Our code (the onefile bootstrap and the program inside it): full RELRO, canary, NX,
    PIE, FORTIFY, audited again here by the real command, and built with the hermetic
    toolchain: no glibc symbol newer than 2.17 in any file, so no waiver. BTI/PAC is
    reported with its evidence (zig's start files carry no GNU property note)."""
    binary = arm_nuitka / "portcheck-1.0.0-linux-arm64"
    proc = buildkit("audit", binary, "--format", "json")
    own = [f for f in json.loads(proc.stdout)["files"] if f["component"] == "own"]
    assert {f["member"] for f in own} == {"", "portcheck-1.0.0-linux-arm64.bin"}
    for entry in own:
        assert entry["arch"] == "aarch64"
        checks = entry["checks"]
        for name in ("relro", "canary", "nx", "pie", "fortify"):
            assert checks[name]["state"] == "pass", (entry["member"], name, checks[name])
        assert checks["relro"]["evidence"].startswith("full")
        assert checks["bti"]["state"] in ("pass", "fail") and checks["bti"]["evidence"]
    files = json.loads(proc.stdout)["files"]
    assert len(files) > 20  # the payload's extension modules too
    for entry in files:
        assert entry["checks"]["glibc"]["state"] == "pass", entry
    # and objdump agrees: no GLIBC_ version above the baseline in the binary itself
    dump = subprocess.run(["objdump", "-T", binary], check=True, capture_output=True, text=True)
    needed = {tuple(map(int, v.split("."))) for v in re.findall(r"GLIBC_([0-9.]+)", dump.stdout)}
    assert needed and max(needed) <= (2, 17), sorted(needed)
    policy = json.loads((arm_nuitka / "portcheck-1.0.0.hardening.json").read_text())["policy"]
    assert policy["passed"] is True
    assert {v["requirement"] for v in policy["verdicts"]} == {
        "relro-full",
        "canary",
        "nx",
        "pie",
        "fortify",
        "glibc",
    }
    # no waiver needed: every verdict passes (PIE is n/a for extension modules)
    for verdict in policy["verdicts"]:
        assert verdict["outcome"] == "pass" or (
            verdict["check"] == "pie" and verdict["outcome"] == "n/a"
        ), verdict
        assert not verdict["waiver"], verdict


def test_builder_binary_runs_on_the_emulated_host(
    arm_nuitka: Path,
    host_cache: Path,
    peers: dict[str, str],
    sample_dist: Path,
    run_env: dict[str, str],
) -> None:
    args = sample_args("portcheck", peers)
    code, out = run_native(sample_dist / "portcheck-1.0.0-linux-amd64.pex", args, run_env)
    proc = run_on("linux-arm64", arm_nuitka / "portcheck-1.0.0-linux-arm64", args, host_cache)
    assert proc.returncode == code, proc.stderr
    assert comparable("portcheck", proc.stdout) == comparable("portcheck", out)


# --- a native musl aarch64 binary from the emulated Alpine builder --------------------------


@pytest.fixture(scope="module")
def alpine_nuitka(
    hosts: dict[str, Path], host_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """portcheck's alpine-arm64 binary, built on the musl root: Nuitka on the toolchain's
    musl CPython under emulation, this machine's zig, the toolchain's readelf, strip and
    patchelf (the root has no binutils)."""
    return build_on_builder("alpine-arm64", host_cache, tmp_path_factory.mktemp("alpine-nuitka"))


def test_alpine_builder_makes_a_musl_binary_that_passed_its_checks(alpine_nuitka: Path) -> None:
    binary = alpine_nuitka / "portcheck-1.0.0-alpine-arm64"
    assert buildkit("verify", alpine_nuitka).returncode == 0
    said = subprocess.run(["file", "-b", binary], check=True, capture_output=True, text=True).stdout
    # dynamically linked against musl, as designed: it loads extension modules
    assert "ARM aarch64" in said and "dynamically linked" in said, said
    assert "interpreter /lib/ld-musl-aarch64.so.1" in said, said
    (entry,) = json.loads((alpine_nuitka / "manifest.json").read_text())["artifacts"]
    settings = entry["inputs"]["settings"]
    assert settings["interpreter"].startswith("CPython 3.12.3 (buildkit toolchain"), settings
    assert "aarch64-linux-musl" in settings["interpreter"]
    tools_used = entry["inputs"]["tools"]
    # the builder's programs are recorded as build programs, not as parts of the binary
    assert {"toolchain-program/binutils", "toolchain-program/patchelf"} <= set(tools_used)
    checks = entry["checks"]  # run by the build inside the builder, on the musl root
    assert checks["status"] == "passed", checks
    assert checks["runs"][0]["where"].startswith("this machine (linux aarch64, musl"), checks


def test_alpine_binary_passes_the_gate_and_has_no_glibc(alpine_nuitka: Path) -> None:
    binary = alpine_nuitka / "portcheck-1.0.0-alpine-arm64"
    proc = buildkit("audit", binary, "--format", "json")
    files = json.loads(proc.stdout)["files"]
    assert len(files) > 20
    # the host's libc is the host's: neither the loader nor ldd's name for it is packed
    members = {Path(f["member"]).name for f in files}
    assert not {m for m in members if m.startswith(("ld-musl", "libc.", "ldd"))}, members
    assert {f["component"] for f in files} == {"own", "toolchain"}, files
    for entry in files:
        checks = entry["checks"]
        assert entry["arch"] == "aarch64"
        for name in ("relro", "canary", "nx"):
            assert checks[name]["state"] == "pass", (entry["member"], name, checks[name])
        assert checks["glibc"]["state"] == "n/a", checks["glibc"]
    own = [f for f in files if f["component"] == "own"]
    assert {f["member"] for f in own} == {"", "portcheck-1.0.0-alpine-arm64.bin"}
    for entry in own:
        assert entry["checks"]["pie"]["state"] == "pass"
    needed = subprocess.run(
        ["objdump", "-p", binary], check=True, capture_output=True, text=True
    ).stdout
    # zig names musl "libc.so", a name musl's loader takes as its own (as on Alpine)
    assert "GLIBC" not in needed and re.search(r"NEEDED +libc\.so$", needed, re.M), needed
    policy = json.loads((alpine_nuitka / "portcheck-1.0.0.hardening.json").read_text())["policy"]
    assert policy["passed"] is True, policy


def test_alpine_binary_runs_on_the_musl_host_as_on_amd64(
    alpine_nuitka: Path,
    host_cache: Path,
    peers: dict[str, str],
    sample_dist: Path,
    run_env: dict[str, str],
) -> None:
    args = sample_args("portcheck", peers)
    code, out = run_native(sample_dist / "portcheck-1.0.0-linux-amd64.pex", args, run_env)
    binary = alpine_nuitka / "portcheck-1.0.0-alpine-arm64"
    proc = run_on("alpine-arm64", binary, args, host_cache)
    assert proc.returncode == code, proc.stderr
    assert comparable("portcheck", proc.stdout) == comparable("portcheck", out)


# --- logwatch: a sample with its own C extension, compiled on the emulated builder ------

# A file every Debian root has (base-files), with lines to count.
LICENSE = "/usr/share/common-licenses/GPL-3"


@pytest.fixture(scope="module")
def arm_logwatch(
    hosts: dict[str, Path], host_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """logwatch's linux-arm64 zipapps, built on the emulated builder: its logscan
    extension compiled there by aarch64 gcc with the hardening flags."""
    out = tmp_path_factory.mktemp("arm-logwatch")
    buildkit(
        "build", RECIPES / "logwatch", "--target", "linux-arm64", "--format", "pex",
        "--format", "shiv", "--builder", "linux-arm64", "--out", out, "--cache-dir", host_cache,
    )  # fmt: skip
    return out


def test_logwatch_zipapps_run_on_the_emulated_host_as_on_amd64(
    arm_logwatch: Path,
    *,
    hosts: dict[str, Path],
    host_cache: Path,
    cache_dir: Path,
    run_env: dict[str, str],
    tmp_path: Path,
) -> None:
    here = tmp_path / "dist"
    buildkit("build", RECIPES / "logwatch", "--target", "linux-amd64", "--format", "pex",
             "--out", here, "--cache-dir", cache_dir)  # fmt: skip
    args = ["--pattern", "GNU", "--pattern", "warranty", "--threshold", "2", "--json"]
    amd64 = subprocess.run(
        [here / "logwatch-1.0.0-linux-amd64.pex", f"{hosts['linux-arm64']}{LICENSE}", *args],
        capture_output=True, text=True, env=run_env, check=False,
    )  # fmt: skip
    assert amd64.returncode == 1, amd64.stderr  # over the threshold
    want = {**json.loads(amd64.stdout), "file": LICENSE}
    assert want["matching"] > 2
    for suffix in (".pex", ".pyz"):
        artifact = arm_logwatch / f"logwatch-1.0.0-linux-arm64{suffix}"
        proc = run_on("linux-arm64", artifact, [LICENSE, *args], host_cache)
        assert proc.returncode == 1, proc.stderr[-3000:]
        assert json.loads(proc.stdout) == want


def test_logwatch_arm64_extension_is_audited_as_our_own(arm_logwatch: Path) -> None:
    assert buildkit("verify", arm_logwatch).returncode == 0
    report = json.loads((arm_logwatch / "logwatch-1.0.0.hardening.json").read_text())
    scanners = [f for f in report["files"] if "_scan" in f["path"]]
    assert {f["artifact"] for f in scanners} == {
        "logwatch-1.0.0-linux-arm64.pex", "logwatch-1.0.0-linux-arm64.pyz"
    }  # fmt: skip
    for f in scanners:
        assert (f["arch"], f["component"], f["libc"]) == ("aarch64", "own", "glibc"), f
        for check in ("relro", "canary", "nx", "fortify"):
            assert f["checks"][check]["state"] == "pass", (f["path"], check)
    assert report["policy"]["passed"] is True
