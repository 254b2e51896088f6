"""A real package index on loopback (PEP 503 pages, real wheel bytes) that misbehaves:
connections cut mid-download, a stalled transfer, errors, a wheel with other bytes, no
network at all (``unshare -n``)."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from buildkit.release.publish import listing_problems
from tests.conftest import RECIPES
from tests.integration.conftest import buildkit, seed_compiler_caches
from tests.integration.test_faults import cache_problems

pytestmark = [pytest.mark.integration, pytest.mark.faults]


@dataclass
class Index:
    """What the index does with the next file requests: a list of modes, then "ok"."""

    wheel: Path
    plan: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    url: str = ""

    def next_mode(self) -> str:
        return self.plan.pop(0) if self.plan else "ok"


def _handler(index: Index) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            data = index.wheel.read_bytes()
            name = index.wheel.name
            if self.path.rstrip("/") == "/simple/psutil":
                digest = hashlib.sha256(data).hexdigest()
                body = f'<html><body><a href="/files/{name}#sha256={digest}">{name}</a>'
                self._send(200, body.encode(), "text/html")
                return
            if self.path != f"/files/{name}":
                self._send(404, b"not here", "text/plain")
                return
            mode = index.next_mode()
            index.requests.append(mode)
            if mode == "ok":
                self._send(200, data, "application/octet-stream")
            elif mode == "503":
                self._send(503, b"busy", "text/plain")
            elif mode == "wrong":  # same name, other bytes
                self._send(200, data[:-64] + bytes(64), "application/octet-stream")
            elif mode in ("cut", "stall"):
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                if mode == "stall":
                    time.sleep(30)
                self.close_connection = True
                self.connection.close()

        def _send(self, code: int, body: bytes, kind: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@pytest.fixture(scope="module")
def psutil_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real psutil wheel hostmetrics' linux-amd64 lock pins, fetched once."""
    base = tmp_path_factory.mktemp("wheel")
    buildkit(*job("hostmetrics", base / "dist", base / "cache"))
    (wheel,) = (base / "cache" / "wheels").glob("*/*/psutil-*.whl")
    return wheel


@pytest.fixture
def index(psutil_wheel: Path) -> Iterator[Index]:
    state = Index(wheel=psutil_wheel)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/simple"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def job(recipe: str, out: Path, cache: Path, *extra: str) -> list[str | Path]:
    return ["build", RECIPES / recipe, "--target", "linux-amd64", "--format", "shiv",
            "--out", out, "--cache-dir", cache, *extra]  # fmt: skip


def env(index: Index, **more: str) -> dict[str, str]:
    return {"PIP_INDEX_URL": index.url, **more}


def psutil_in(cache: Path) -> list[Path]:
    return list((cache / "wheels").glob("*/*/psutil-*.whl"))


def test_cut_and_busy_downloads_are_retried(tmp_path: Path, index: Index) -> None:
    index.plan = ["cut", "503", "cut"]
    buildkit(*job("hostmetrics", tmp_path / "dist", tmp_path / "cache"), env=env(index))
    assert index.requests[:3] == ["cut", "503", "cut"] and index.requests[-1] == "ok"
    assert len(psutil_in(tmp_path / "cache")) == 1
    assert cache_problems(tmp_path / "cache") == []
    buildkit("verify", tmp_path / "dist")


def test_a_download_that_keeps_failing_fails_clearly(tmp_path: Path, index: Index) -> None:
    index.plan = ["cut"] * 20
    cache = tmp_path / "cache"
    started = time.monotonic()
    proc = buildkit(*job("hostmetrics", tmp_path / "dist", cache), env=env(index), check=False)
    assert proc.returncode == 3, proc.stderr
    assert "fetching psutil==7.2.2 for linux-amd64 needs the package index" in proc.stderr
    assert time.monotonic() - started < 120
    assert 2 <= len(index.requests) <= 10  # retried, and bounded
    assert psutil_in(cache) == [] and cache_problems(cache) == []
    assert not (tmp_path / "dist").exists()


@pytest.mark.parametrize(
    ("limits", "says"),
    [
        # a silent connection: pip's read timeout, its retries, then the network error
        ({"BUILDKIT_NET_TIMEOUT": "2"}, "needs the package index, which could not be reached"),
        # a slow one within the read timeout: the whole fetch's deadline stops it
        (
            {"BUILDKIT_NET_TIMEOUT": "25", "BUILDKIT_FETCH_DEADLINE": "6"},
            "did not finish within 6 s (BUILDKIT_FETCH_DEADLINE); it was stopped",
        ),
    ],
)
def test_a_stalled_download_is_given_up_in_bounded_time(
    tmp_path: Path, index: Index, limits: dict[str, str], says: str
) -> None:
    index.plan = ["stall"] * 20
    cache = tmp_path / "cache"
    started = time.monotonic()
    proc = buildkit(
        *job("hostmetrics", tmp_path / "dist", cache), env=env(index, **limits), check=False
    )
    took = time.monotonic() - started
    assert proc.returncode == 3, proc.stderr
    assert "fetching psutil==7.2.2 for linux-amd64" in proc.stderr and says in proc.stderr
    assert took < 45, took
    assert psutil_in(cache) == [] and cache_problems(cache) == []


def test_a_wheel_with_other_bytes_never_enters_the_cache(tmp_path: Path, index: Index) -> None:
    index.plan = ["wrong"] * 20
    cache = tmp_path / "cache"
    proc = buildkit(*job("hostmetrics", tmp_path / "dist", cache), env=env(index), check=False)
    assert proc.returncode == 3, proc.stderr
    assert "error: psutil==7.2.2 for linux-amd64: the file the index serves has sha256:" in (
        proc.stderr
    )
    assert "which the lock does not pin; nothing was kept" in proc.stderr
    assert psutil_in(cache) == [] and cache_problems(cache) == []
    assert not (tmp_path / "dist").exists()
    index.plan = []  # the index is fixed: the same command now works
    buildkit(*job("hostmetrics", tmp_path / "dist", cache), env=env(index))
    buildkit("verify", tmp_path / "dist")


UNSHARE = shutil.which("unshare")


def offline_ns(*args: str | Path) -> list[str | Path]:
    return [UNSHARE or "unshare", "-n", "--", *args]


@pytest.mark.skipif(UNSHARE is None, reason="needs util-linux unshare")
def test_offline_build_in_a_namespace_without_network(tmp_path: Path, cache_dir: Path) -> None:
    """Fill the cache with network, drop the built artifacts from it, then build every
    format again in a network namespace that has no network: the same bytes. Without
    --offline there, the error says what needed the network. (Only the session's
    compiler caches are copied in first: every wheel is fetched here, every tool runs.)"""
    import os
    import sys

    if os.geteuid() != 0:
        pytest.skip("unshare -n needs root (CI runs as root)")
    cache = tmp_path / "cache"
    seed_compiler_caches(cache, cache_dir)
    online, offline = tmp_path / "online", tmp_path / "offline"
    everything = ["build", RECIPES / "hostmetrics", "--target", "linux-amd64",
                  "--format", "pex", "--format", "shiv", "--format", "nuitka"]  # fmt: skip
    buildkit(*everything, "--out", online, "--cache-dir", cache)
    for kind in ("actions", "blobs", "trees"):  # built again for real below
        shutil.rmtree(cache / kind, ignore_errors=True)
    python = [sys.executable, "-m", "buildkit"]
    proc = subprocess.run(
        offline_ns(*python, *everything, "--out", offline, "--cache-dir", cache, "--offline"),
        capture_output=True, text=True, env={**os.environ, "CI": "true"}, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "built   hostmetrics-1.0.0-linux-amd64 " in proc.stdout  # nuitka ran, offline
    for artifact in online.glob("hostmetrics-1.0.0-linux-amd64*"):
        assert (offline / artifact.name).read_bytes() == artifact.read_bytes(), artifact.name
    assert listing_problems(offline) == []
    buildkit("verify", offline)
    fresh = tmp_path / "fresh-cache"
    proc = subprocess.run(
        offline_ns(*python, *everything, "--out", tmp_path / "x", "--cache-dir", fresh),
        capture_output=True, text=True, env={**os.environ, "CI": "true"}, check=False,
    )  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    assert "fetching psutil==7.2.2 for linux-amd64 needs the package index, which could not be " \
        "reached" in proc.stderr  # fmt: skip
    assert "build with --offline" in proc.stderr
    assert cache_problems(fresh) == []


# --- hostile downloads: what the lock pins is itself bad -------------------------------


def pin_only(project_recipe: Path, digest: str) -> None:
    """Make the project's linux-amd64 lock pin psutil to ``digest`` alone, as a lock
    written at that time would (its pins-digest agrees: the lock itself is consistent)."""
    from buildkit import lock

    path = project_recipe.parent.parent / "lockfiles" / "hostmetrics" / "linux-amd64.txt"
    text = re.sub(r"--hash=sha256:[0-9a-f]{64}", f"--hash=sha256:{digest}", path.read_text())
    path.write_text(lock.parse(text, path).render())


def rewrite_wheel(src: Path, dest: Path, change: dict[str, bytes]) -> Path:
    """A copy of ``src`` with members replaced or added (RECORD left as it was)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dest, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info, change.pop(info.filename, None) or zin.read(info.filename))
        for name, data in change.items():
            zout.writestr(name, data)
    return dest


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"../../etc/cron.d/psutil": b"* * * * * root id\n"}, "with a '..' part"),
        (
            {"psutil/__init__.py": b"import os; os.system('id')\n"},
            "whose bytes do not match its RECORD",
        ),
    ],
)
def test_a_pinned_but_hostile_wheel_is_refused(
    tmp_path: Path,
    index: Index,
    recipe_copy,
    change: dict[str, bytes],
    says: str,  # type: ignore[no-untyped-def]
) -> None:
    recipe = recipe_copy("hostmetrics")
    crafted = tmp_path / "crafted" / index.wheel.name
    crafted.parent.mkdir()
    rewrite_wheel(index.wheel, crafted, dict(change))
    index.wheel = crafted  # the index serves it, under the real name
    pin_only(recipe, hashlib.sha256(crafted.read_bytes()).hexdigest())
    cache = tmp_path / "cache"
    proc = buildkit(*job_for(recipe, tmp_path / "dist", cache), env=env(index), check=False)
    assert proc.returncode == 3, proc.stderr
    assert f"error: psutil==7.2.2: the wheel {crafted.name} " in proc.stderr and says in proc.stderr
    assert psutil_in(cache) == [] and cache_problems(cache) == []
    assert not (tmp_path / "dist").exists()


def test_a_lock_hash_of_another_file_is_refused(
    tmp_path: Path,
    index: Index,
    recipe_copy,  # type: ignore[no-untyped-def]
) -> None:
    recipe = recipe_copy("hostmetrics")
    other = hashlib.sha256((recipe / "recipe.toml").read_bytes()).hexdigest()
    pin_only(recipe, other)
    cache = tmp_path / "cache"
    proc = buildkit(*job_for(recipe, tmp_path / "dist", cache), env=env(index), check=False)
    assert proc.returncode == 3, proc.stderr
    real = hashlib.sha256(index.wheel.read_bytes()).hexdigest()
    assert (
        f"error: psutil==7.2.2 for linux-amd64: the file the index serves has sha256:{real}, "
        "which the lock does not pin" in proc.stderr
    )
    assert psutil_in(cache) == [] and cache_problems(cache) == []


def job_for(recipe: Path, out: Path, cache: Path) -> list[str | Path]:
    return ["build", recipe, "--target", "linux-amd64", "--format", "shiv", "--out", out,
            "--cache-dir", cache]  # fmt: skip
