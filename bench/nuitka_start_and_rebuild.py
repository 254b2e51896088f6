"""Benchmark: the nuitka onefile binary of portcheck against ``python3 -I`` on the same script.

Run with the toolkit's venv:  .venv/bin/python bench/nuitka_start_and_rebuild.py

Measured in this one run and printed as ratios:

* warm start: median wall time of N interleaved runs (the extraction cache filled), goal
  <= 0.8x; the standalone program inside the onefile is shown too, as the floor.
* peak RSS: the largest resident set of the process tree, median of N runs, goal <= 1.5x.
* cold first start: the onefile with an empty extraction cache (reported, no goal).
* rebuild after a one-line change to the script against the cold build (empty caches),
  goal <= 0.5x.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from common import real_python, tcp_listener  # noqa: E402

HOST = "linux-amd64"


def run_once(cmd: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall time (s) and peak RSS (KiB) of one run, the whole process tree included."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(
            f"{cmd[0]} failed ({code}): {proc.stderr.read().decode()[-400:] if proc.stderr else ''}"
        )
    # On Linux, wait4's ru_maxrss covers the child and the descendants it waited for (the
    # onefile bootstrap waits for the program it starts).
    return elapsed, usage.ru_maxrss


def medians(
    cmds: dict[str, list[str]], env: dict[str, str], runs: int
) -> dict[str, tuple[float, float]]:
    for cmd in cmds.values():
        run_once(cmd, env)
    times: dict[str, list[float]] = {k: [] for k in cmds}
    rss: dict[str, list[int]] = {k: [] for k in cmds}
    for _ in range(runs):
        for name, cmd in cmds.items():
            t, r = run_once(cmd, env)
            times[name].append(t)
            rss[name].append(r)
    return {k: (statistics.median(times[k]), statistics.median(rss[k])) for k in cmds}


def build(recipe: Path, out: Path, cache: Path) -> tuple[float, dict[str, object]]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "buildkit", "build", str(recipe), "--format", "nuitka",
         "--target", HOST, "--out", str(out), "--cache-dir", str(cache), "--json"],
        check=True, capture_output=True, text=True, env={**env, "CI": "true"},
        cwd=recipe.parents[1],
    )  # fmt: skip
    (artifact,) = json.loads(proc.stdout)["artifacts"]
    return time.perf_counter() - started, artifact


def _project(tmp: Path, opts: argparse.Namespace) -> Path:
    """A copy of the portcheck sample, its nuitka options as the variant asks."""
    project = tmp / "project"
    shutil.copytree(ROOT / "recipes" / "portcheck", project / "recipes" / "portcheck",
                    ignore=shutil.ignore_patterns("tests", "__pycache__"))  # fmt: skip
    shutil.copytree(ROOT / "lockfiles" / "portcheck", project / "lockfiles" / "portcheck")
    recipe = project / "recipes" / "portcheck"
    if opts.without_exclude or opts.traced:
        toml = recipe / "recipe.toml"
        instead = 'nuitka = { trace = "include-exclude" }' if opts.traced else "nuitka = {}"
        text, n = re.subn(r"nuitka = \{ exclude = \[.*?\] \}", instead,
                          toml.read_text(), flags=re.S)  # fmt: skip
        assert n == 1, "the sample's nuitka exclude list was not found"
        toml.write_text(text)
    return recipe


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=21, help="timed runs per command (>= 10)")
    variant = parser.add_mutually_exclusive_group()
    variant.add_argument(
        "--without-exclude",
        action="store_true",
        help="build the sample without its [formats] nuitka exclude list, for comparison",
    )
    variant.add_argument(
        "--traced",
        action="store_true",
        help='build the sample with trace = "include-exclude" instead of its hand-written '
        "exclude list: what the recipe's checks never import is left out",
    )
    opts = parser.parse_args()
    runs = max(10, opts.runs)
    with tempfile.TemporaryDirectory(prefix="buildkit-bench-nuitka-") as tmp_name:
        tmp = Path(tmp_name)
        recipe = _project(tmp, opts)
        cache = tmp / "cache"
        cold_s, artifact = build(recipe, tmp / "dist", cache)
        binary = Path(str(artifact["path"]))
        size_mb = binary.stat().st_size / 1e6
        program = Path(str(artifact["payload"])) / f"{binary.name}.bin"

        listener, port = tcp_listener()
        args = [f"127.0.0.1:{port}"]
        py = real_python()
        src = recipe / "src"
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp / "home"),
            "XDG_CACHE_HOME": str(tmp / "xdg"),
        }
        cmds = {
            "python3 -I": [str(py), "-I", "-c", f"import sys; sys.path.append({str(src)!r}); "
                           "from portcheck.cli import main; sys.exit(main())", *args],
            "onefile": [str(binary), *args],
            "standalone program": [str(program), *args],
        }  # fmt: skip
        got = medians(cmds, env, runs)

        first = []
        for i in range(max(5, runs // 4)):
            cold_env = {**env, "XDG_CACHE_HOME": str(tmp / f"xdg-cold-{i}")}
            first.append(run_once([str(binary), *args], cold_env)[0])
        listener.close()

        cli = recipe / "src" / "portcheck" / "cli.py"
        cli.write_text(cli.read_text().replace('default=3.0, help="seconds per port"',
                                               'default=2.5, help="seconds per port"'))  # fmt: skip
        rebuild_s, rebuilt = build(recipe, tmp / "dist", cache)
        assert rebuilt["reused"] is False and rebuilt["sha256"] != artifact["sha256"]

    base_t, base_rss = got["python3 -I"]
    variant = (
        " without its exclude list"
        if opts.without_exclude
        else " with a traced exclude list (no hand-written one)"
        if opts.traced
        else ""
    )
    print(f"portcheck onefile{variant} ({size_mb:.1f} MB) against python3 -I, "
          f"median of {runs} runs")  # fmt: skip
    for name, (t, r) in got.items():
        print(
            f"  {name:<20} {t * 1000:7.1f} ms  {t / base_t:5.2f}x   "
            f"peak RSS {r / 1024:6.1f} MiB  {r / base_rss:5.2f}x"
        )
    cold_first = statistics.median(first)
    print(f"  {'cold first start':<20} {cold_first * 1000:7.1f} ms  {cold_first / base_t:5.2f}x")
    print(f"\nbuild: cold {cold_s:.1f} s, after a one-line change {rebuild_s:.1f} s "
          f"({rebuild_s / cold_s:.2f}x)")  # fmt: skip
    goals = {
        "onefile warm start <= 0.8x": got["onefile"][0] / base_t <= 0.8,
        "onefile peak RSS <= 1.5x": got["onefile"][1] / base_rss <= 1.5,
        "rebuild after a one-line change <= 0.5x": rebuild_s / cold_s <= 0.5,
    }
    print()
    for goal, met in goals.items():
        print(f"{'met' if met else 'MISSED':<7}{goal}")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    name = "nuitka_start_and_rebuild" + (
        "-without-exclude" if opts.without_exclude else "-traced" if opts.traced else ""
    )
    (out / f"{name}.json").write_text(json.dumps({
        "onefile_mb": size_mb,
        "start": {k: {"seconds": t, "rss_kib": r} for k, (t, r) in got.items()},
        "cold_first_start_s": cold_first, "cold_build_s": cold_s, "rebuild_s": rebuild_s,
        "goals": goals}, indent=2) + "\n")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
