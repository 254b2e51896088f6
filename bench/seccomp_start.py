"""Benchmark: what the seccomp filter costs portcheck's native binary at start and per call.

Run with the toolkit's venv:  .venv/bin/python bench/seccomp_start.py

Builds portcheck's linux-amd64 Nuitka binary with ``seccomp = "enforce"`` (the filter its
checks recorded, written into the binary), then makes the same binary without the filter:
a copy whose slot is marked empty (one word differs; the constructor then returns at
once). Printed from this one run:

* warm start: median wall time of ``--runs`` interleaved runs of each (extraction cache
  filled), and the ratio filtered/unfiltered; the baseline is the same script under the
  system's ``python3 -I`` (no site .pth files; printed);
* a call-heavy run: ``--calls`` probes of a closed port in one process (each a socket,
  a connect and a close through the filter), filtered/unfiltered.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from common import real_python, tcp_listener  # noqa: E402

from buildkit.seccomp import slot  # noqa: E402

RECIPE_TAIL = """
[hardening]
require = ["relro-full", "canary", "nx", "pie", "fortify", "glibc", "seccomp"]
seccomp = "enforce"
"""


def build(tmp: Path) -> Path:
    project = tmp / "project"
    (project / "recipes").mkdir(parents=True)
    subprocess.run(["cp", "-r", ROOT / "recipes" / "portcheck", project / "recipes"], check=True)
    subprocess.run(["cp", "-r", ROOT / "lockfiles", project], check=True)
    toml = project / "recipes" / "portcheck" / "recipe.toml"
    toml.write_text(toml.read_text() + RECIPE_TAIL)
    out = tmp / "dist"
    subprocess.run(
        [sys.executable, "-m", "buildkit", "build", toml.parent, "--target", "linux-amd64",
         "--format", "nuitka", "--out", out, "--cache-dir", tmp / "cache"],
        check=True, cwd=project, env={**os.environ, "CI": "true", "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    return out / "portcheck-1.0.0-linux-amd64"


def timed(cmds: dict[str, list[str]], runs: int, env: dict[str, str]) -> dict[str, float]:
    for argv in cmds.values():  # warm: extraction caches filled, each must work
        subprocess.run(argv, env=env, check=False, capture_output=True)
    times: dict[str, list[float]] = {k: [] for k in cmds}
    for _ in range(runs):
        for key, argv in cmds.items():
            started = time.perf_counter()
            subprocess.run(argv, env=env, check=False, capture_output=True)
            times[key].append(time.perf_counter() - started)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--calls", type=int, default=2000)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="buildkit-bench-seccomp-") as name:
        tmp = Path(name)
        armed = build(tmp)
        plain = tmp / "unfiltered"
        slot.disarm(armed, plain)
        env = {**os.environ, "HOME": str(tmp / "home"), "XDG_CACHE_HOME": str(tmp / "xdg")}
        _listener, port = tcp_listener()
        python = real_python()
        src = ROOT / "recipes" / "portcheck" / "src"
        direct = f"import sys; sys.path.insert(0, {str(src)!r}); from portcheck.cli import main; "
        direct += "sys.exit(main())"
        args = [f"127.0.0.1:{port}"]
        start = timed(
            {
                "filtered": [str(armed), *args],
                "unfiltered": [str(plain), *args],
                f"{python} -I": [str(python), "-I", "-c", direct, *args],
            },
            opts.runs,
            env,
        )
        many = [f"127.0.0.1:{p}" for p in range(1, opts.calls + 1)]  # mostly closed
        heavy = timed(
            {"filtered": [str(armed), *many, "--timeout", "1"],
             "unfiltered": [str(plain), *many, "--timeout", "1"]},
            max(3, opts.runs // 4),
            env,
        )  # fmt: skip
    base = start[f"{python} -I"]
    print(f"baseline: {python} -I running portcheck from its sources (no site .pth files)")
    for key, value in start.items():
        print(f"  start {key:<28} {value * 1000:7.1f} ms  {value / base:5.2f}x of the baseline")
    print(f"start, filtered/unfiltered: {start['filtered'] / start['unfiltered']:.3f}x")
    print(
        f"{opts.calls} probes in one run: filtered {heavy['filtered'] * 1000:.0f} ms, "
        f"unfiltered {heavy['unfiltered'] * 1000:.0f} ms, "
        f"{heavy['filtered'] / heavy['unfiltered']:.3f}x"
    )
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "seccomp_start.json").write_text(
        json.dumps({"start": start, "calls": heavy, "baseline": str(python)}, indent=2) + "\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
