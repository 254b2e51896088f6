"""What the benchmark scripts share: the real interpreter, a local TCP listener, the
machine's load and the options of the onefile benches."""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import sysconfig
import threading
import time
from pathlib import Path


def real_python() -> Path:
    """The interpreter itself (not a pyenv shim or venv wrapper) for python3.X: the
    system's when it has one (as on an ops host; a pyenv interpreter's site-packages may
    hold .pth files that work at every start), else the one this runs under."""
    name = f"python{sysconfig.get_config_var('VERSION')}"
    system = Path("/usr/bin") / name
    return system if system.is_file() else Path(sys.base_prefix) / "bin" / name


def tcp_listener() -> tuple[socket.socket, int]:
    """A listening port for portcheck; accepted connections are closed at once."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)

    def drain() -> None:
        while True:
            try:
                listener.accept()[0].close()
            except OSError:
                return

    threading.Thread(target=drain, daemon=True).start()
    return listener, listener.getsockname()[1]


def load() -> str:
    """The machine's load averages (1, 5, 15 minutes), as printed beside every figure."""
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def onefile_options(parser: argparse.ArgumentParser, recipes: str) -> argparse.Namespace:
    """The options every onefile bench takes: which recipes, how many timed runs (at
    least 10), and the cache whose toolchain is copied (built once before)."""
    parser.add_argument("--recipes", default=recipes)
    parser.add_argument("--runs", type=int, default=25, help="timed runs per command (>= 10)")
    parser.add_argument("--toolchain-cache", type=Path, default=Path.home() / ".cache" / "buildkit")
    opts = parser.parse_args()
    opts.runs = max(10, opts.runs)
    return opts


def build_onefile(source: Path, recipe: Path, out: Path, cache: Path) -> tuple[float, Path]:
    """The linux-amd64 Nuitka binary of ``recipe`` built by the buildkit in ``source``
    (a checkout): seconds taken and the artifact's path. A failed build ends the bench."""
    env = {**os.environ, "CI": "true", "PYTHONPATH": str(source)}
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "buildkit", "build", str(recipe), "--format", "nuitka",
         "--target", "linux-amd64", "--out", str(out), "--cache-dir", str(cache), "--json"],
        capture_output=True, text=True, env=env, cwd=source, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"build of {recipe} by {source} failed ({proc.returncode}): "
                         f"{proc.stderr[-2000:]}")  # fmt: skip
    (artifact,) = json.loads(proc.stdout)["artifacts"]
    return time.perf_counter() - started, Path(artifact["path"])
