"""Benchmark: warm start of the linux-amd64 artifacts, and unchanged rebuild vs cold build.

Run with the toolkit's venv:  .venv/bin/python bench/startup_and_rebuild.py

Everything is measured in this one run and printed as ratios, so the figures compare
like with like on a shared, noisy machine:

* warm start: for each sample recipe, the median wall time of N interleaved runs (after
  warm-up runs that fill the pex/shiv extraction caches) of its .pex and .pyz, against
  ``python3.X -I -S`` (the system's interpreter, no site work) running the same script,
  with its package and dependencies (the same
  wheels) on sys.path after the standard library.
  Goals: pex <= 1.0x, shiv <= 1.5x.
* rebuild: ``buildkit build`` of each recipe (every target, pex and shiv) from an empty
  cache and output folder (cold, wheels downloaded), then again unchanged. Goal: <= 5%.
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
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from common import real_python, tcp_listener  # noqa: E402

SAMPLES = ("portcheck", "healthcheck", "hostmetrics")
HOST = "linux-amd64"


def timed(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr.decode()[-500:]}")
    return elapsed


Command = tuple[list[str], dict[str, str]]


def medians(cmds: dict[str, Command], runs: int, warmup: int = 3) -> dict[str, float]:
    """Median wall time of each (argv, env); runs interleaved so drift hits all alike."""
    for cmd, env in cmds.values():
        for _ in range(warmup):
            timed(cmd, env)
    times: dict[str, list[float]] = {name: [] for name in cmds}
    for _ in range(runs):
        for name, (cmd, env) in cmds.items():
            times[name].append(timed(cmd, env))
    return {name: statistics.median(t) for name, t in times.items()}


def build(recipe: str, out: Path, cache: Path) -> float:
    # As on a user's machine: the toolkit's own bytecode is cached between runs.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "buildkit", "build", str(ROOT / "recipes" / recipe),
         "--out", str(out), "--cache-dir", str(cache)],
        check=True, capture_output=True, env={**env, "CI": "true"},
    )  # fmt: skip
    return time.perf_counter() - started


def plain_tree(pyz: Path, dest: Path) -> Path:
    """The script's sources and its installed wheels, as a plain folder (from the .pyz)."""
    with zipfile.ZipFile(pyz) as zf:
        for name in zf.namelist():
            if name.startswith("site-packages/"):
                zf.extract(name, dest)
    return dest / "site-packages"


def baseline(recipe: str, site: Path, py: Path) -> list[str]:
    """``python3 -I -S`` running the same script: the interpreter itself with no ``site``
    work at all, the script's package and its dependencies (the same wheels, installed)
    on sys.path after the stdlib, as site-packages would be."""
    return [
        str(py), "-I", "-S", "-c",
        f"import sys; sys.path.append({str(site)!r}); "
        f"from {recipe}.cli import main; sys.exit(main())",
    ]  # fmt: skip


def shiv_options(tmp: Path, py: Path, env: dict[str, str], runs: int) -> dict[str, float]:
    """shiv's options on the heaviest script: what buildkit ships (no --compile-pyc) and
    --compile-pyc, each with and without bytecode writing, as ratios to python3 -I."""
    site = tmp / "plain" / "healthcheck" / "site-packages"
    bare = [*baseline("healthcheck", site, py), "--help"]
    cmds: dict[str, Command] = {"python3 -I": (bare, env)}
    for variant, extra in (("default", []), ("--compile-pyc", ["--compile-pyc"])):
        pyz = tmp / f"variant-{len(cmds)}.pyz"
        subprocess.run(
            [str(Path(sys.executable).parent / "shiv"), "-e", "healthcheck.cli:main",
             "-o", str(pyz), "--reproducible", "-p", f"/usr/bin/env {py.name}",
             "--site-packages", str(site), *extra],
            check=True, capture_output=True, env={**os.environ, "PIP_CONFIG_FILE": "/dev/null"},
        )  # fmt: skip
        for label, more in (("", {}), (", no bytecode writing", {"PYTHONDONTWRITEBYTECODE": "1"})):
            name = variant + label
            root = {"SHIV_ROOT": str(tmp / f"shiv-{len(cmds)}")}
            cmds[name] = ([str(pyz), "--help"], {**env, **root, **more})
    got = medians(cmds, runs)
    return {name: t / got["python3 -I"] for name, t in got.items() if name != "python3 -I"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=21, help="timed runs per command (>= 10)")
    args = parser.parse_args()
    runs = max(10, args.runs)

    with tempfile.TemporaryDirectory(prefix="buildkit-bench-") as tmp_name:
        tmp = Path(tmp_name)
        # python3.X on PATH is the real interpreter, as on a host without pyenv shims.
        bindir = tmp / "bin"
        bindir.mkdir()
        py = real_python()
        (bindir / py.name).symlink_to(py)
        (bindir / "python3").symlink_to(py)
        env = {
            "PATH": f"{bindir}:/usr/bin:/bin",
            "HOME": str(tmp),
            "PEX_ROOT": str(tmp / "pex-root"),
            "SHIV_ROOT": str(tmp / "shiv-root"),
            "LC_ALL": "C.UTF-8",
        }

        rebuild: dict[str, dict[str, float]] = {}
        cache, dist = tmp / "cache", tmp / "dist"
        for recipe in SAMPLES:
            cold = build(recipe, dist, cache)
            warm = build(recipe, dist, cache)
            rebuild[recipe] = {"cold_s": cold, "unchanged_s": warm, "ratio": warm / cold}

        listener, port = tcp_listener()
        workload = {
            "portcheck": [f"127.0.0.1:{port}"],
            "healthcheck": ["--help"],
            "hostmetrics": ["--interval", "0"],
        }
        start: dict[str, dict[str, float]] = {}
        for recipe in SAMPLES:
            pyz = dist / f"{recipe}-1.0.0-{HOST}.pyz"
            site = plain_tree(pyz, tmp / "plain" / recipe)
            bare = [*baseline(recipe, site, py), *workload[recipe]]
            cmds: dict[str, Command] = {"python3 -I": (bare, env)}
            for fmt, suffix in (("pex", ".pex"), ("shiv", ".pyz")):
                art = str(dist / f"{recipe}-1.0.0-{HOST}{suffix}")
                cmds[fmt] = ([art, *workload[recipe]], env)
            got = medians(cmds, runs)
            start[recipe] = {
                "python3 -I (s)": got["python3 -I"],
                "pex (s)": got["pex"],
                "pex ratio": got["pex"] / got["python3 -I"],
                "shiv (s)": got["shiv"],
                "shiv ratio": got["shiv"] / got["python3 -I"],
            }
        listener.close()

        shiv_opts = shiv_options(tmp, py, env, runs)

    print(f"baseline: {real_python()} -I -S running the same script (no site, no .pth files)")
    print(f"warm start, median of {runs} runs (ratio to the baseline)")
    print(f"{'recipe':<12} {'python3 -I':>10} {'pex':>8} {'ratio':>6} {'shiv':>8} {'ratio':>6}")
    for recipe, row in start.items():
        print(
            f"{recipe:<12} {row['python3 -I (s)'] * 1000:8.1f}ms {row['pex (s)'] * 1000:6.1f}ms "
            f"{row['pex ratio']:5.2f}x {row['shiv (s)'] * 1000:6.1f}ms {row['shiv ratio']:5.2f}x"
        )
    print("\nshiv options (healthcheck --help, ratio to python3 -I)")
    for variant, ratio in shiv_opts.items():
        print(f"  {variant:<40} {ratio:5.2f}x")
    print("\nunchanged rebuild vs cold build (every target, pex and shiv)")
    for recipe, r in rebuild.items():
        print(
            f"{recipe:<12} cold {r['cold_s']:6.1f}s  unchanged {r['unchanged_s']:5.2f}s  "
            f"{r['ratio'] * 100:5.1f}%"
        )
    goals = {
        "pex warm start <= 1.0x": all(r["pex ratio"] <= 1.0 for r in start.values()),
        "shiv warm start <= 1.5x": all(r["shiv ratio"] <= 1.5 for r in start.values()),
        "unchanged rebuild <= 5%": all(r["ratio"] <= 0.05 for r in rebuild.values()),
    }
    print()
    for goal, met in goals.items():
        print(f"{'met' if met else 'MISSED':<7}{goal}")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "startup_and_rebuild.json").write_text(
        json.dumps(
            {"start": start, "shiv_options": shiv_opts, "rebuild": rebuild, "goals": goals},
            indent=2,
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
