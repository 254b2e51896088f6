"""Benchmark: what the seccomp filters cost portcheck at start and per call.

Run with the toolkit's venv:  .venv/bin/python bench/seccomp_start.py

Builds portcheck for linux-amd64 with ``seccomp = "enforce"``: the Nuitka binary (two
filters: the bootstrap's and the program's, written into its slot) and the pex and shiv
zipapps (the program filter, installed by their boot module through ctypes). Then the same
without filters: the native binary's copy whose slot is marked empty (one word differs;
neither stage installs anything), and the zipapps built with ``seccomp = "record"``.
Printed from this one run, with the machine's load before and after:

* warm start: median wall time of ``--runs`` interleaved runs of each (extraction caches
  filled), portcheck probing a closed port (so start-up dominates), and the ratio
  filtered/unfiltered per format; the baseline is the same script started by the system's
  ``python3.11 -I`` with its bytecode cached, as an installed script is (command printed);
* a call-heavy run: ``--calls`` probes of closed ports in one process (each a socket, a
  connect and a close through the filters), filtered/unfiltered, native binary.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from common import load, real_python  # noqa: E402

from buildkit.seccomp import slot  # noqa: E402

RECIPE_TAIL = """
[hardening]
require = ["relro-full", "canary", "nx", "pie", "fortify", "glibc", "seccomp"]
seccomp = "{mode}"
"""
NAME = "portcheck-1.0.0-linux-amd64"


def build(tmp: Path, mode: str, formats: list[str]) -> Path:
    """portcheck's linux-amd64 ``formats`` built with ``seccomp = mode``; the out folder."""
    project = tmp / f"project-{mode}"
    (project / "recipes").mkdir(parents=True)
    subprocess.run(["cp", "-r", ROOT / "recipes" / "portcheck", project / "recipes"], check=True)
    subprocess.run(["cp", "-r", ROOT / "lockfiles", project], check=True)
    toml = project / "recipes" / "portcheck" / "recipe.toml"
    tail = RECIPE_TAIL.format(mode=mode)
    if mode != "enforce":
        tail = tail.replace(', "seccomp"]', "]")
    toml.write_text(toml.read_text() + tail)
    out = tmp / f"dist-{mode}"
    subprocess.run(
        [sys.executable, "-m", "buildkit", "build", toml.parent, "--target", "linux-amd64",
         *(f"--format={f}" for f in formats), "--out", out, "--cache-dir", tmp / "cache"],
        check=True, cwd=project, env={**os.environ, "CI": "true", "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    return out


def installed(tmp: Path, python: Path) -> list[str]:
    """portcheck as an installed script: its sources in a folder, bytecode compiled."""
    site = tmp / "installed"
    shutil.copytree(ROOT / "recipes" / "portcheck" / "src", site)
    compileall.compile_dir(site, quiet=1)
    script = site / "portcheck-run.py"
    script.write_text(
        f"import sys\nsys.path.insert(0, {str(site)!r})\nfrom portcheck.cli import main\n"
        "sys.exit(main())\n"
    )
    return [str(python), "-I", str(script)]


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
    before = load()
    with tempfile.TemporaryDirectory(prefix="buildkit-bench-seccomp-") as name:
        tmp = Path(name)
        armed = build(tmp, "enforce", ["nuitka", "pex", "shiv"])
        plain = build(tmp, "record", ["pex", "shiv"])
        native = armed / NAME
        slot.disarm(native, tmp / "unfiltered")
        env = {**os.environ, "HOME": str(tmp / "home"), "XDG_CACHE_HOME": str(tmp / "xdg")}
        python = real_python()
        baseline = installed(tmp, python)
        args = ["127.0.0.1:1", "--timeout", "1"]  # closed: start-up dominates
        cmds = {
            "baseline": [*baseline, *args],
            "native filtered": [str(native), *args],
            "native unfiltered": [str(tmp / "unfiltered"), *args],
            "pex filtered": [str(armed / f"{NAME}.pex"), *args],
            "pex unfiltered": [str(plain / f"{NAME}.pex"), *args],
            "pyz filtered": [str(armed / f"{NAME}.pyz"), *args],
            "pyz unfiltered": [str(plain / f"{NAME}.pyz"), *args],
        }
        start = timed(cmds, opts.runs, env)
        many = [f"127.0.0.1:{p}" for p in range(1, opts.calls + 1)]  # mostly closed
        heavy = timed(
            {"filtered": [str(native), *many, "--timeout", "1"],
             "unfiltered": [str(tmp / "unfiltered"), *many, "--timeout", "1"]},
            max(3, opts.runs // 4),
            env,
        )  # fmt: skip
    base = start["baseline"]
    print(f"load before: {before}, after: {load()} (1/5/15 min)")
    print(f"baseline: {' '.join(baseline)} 127.0.0.1:1 --timeout 1 (closed port): "
          f"{base * 1000:.1f} ms")  # fmt: skip
    for key, value in start.items():
        print(f"  start {key:<20} {value * 1000:7.1f} ms  {value / base:5.2f}x of the baseline")
    for fmt in ("native", "pex", "pyz"):
        ratio = start[f"{fmt} filtered"] / start[f"{fmt} unfiltered"]
        print(f"start, {fmt} filtered/unfiltered: {ratio:.3f}x")
    print(
        f"{opts.calls} probes in one run (native): filtered {heavy['filtered'] * 1000:.0f} ms, "
        f"unfiltered {heavy['unfiltered'] * 1000:.0f} ms, "
        f"{heavy['filtered'] / heavy['unfiltered']:.3f}x"
    )
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "seccomp_start.json").write_text(
        json.dumps({"start": start, "calls": heavy, "baseline": baseline, "load": before},
                   indent=2) + "\n"
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
