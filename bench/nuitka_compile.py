"""Benchmark: cold Nuitka build time of real CLIs, this code against an earlier commit.

Run with the toolkit's venv (the toolchain built once in the cache given):

    .venv/bin/python bench/nuitka_compile.py [--ref COMMIT] [--recipes portcheck,jc,...]

For each recipe and each version of buildkit (this checkout; with ``--ref``, also that
commit, in a git worktree), the linux-amd64 Nuitka binary is built from cold caches: a
fresh cache folder holding only the toolchain (copied from ``--toolchain-cache``) and the
locked wheels (fetched by a zipapp build first, not timed). The timed command is the
whole ``buildkit build --format nuitka`` (trace, compile, the parity proof where the code
has one, checks, release), printed with its wall time, the machine's load before and
after, and the ratio against the reference in the same run. Runs are sequential: the
machine should be doing nothing else.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPES = {
    "portcheck": ROOT / "recipes" / "portcheck",
    "flake8": ROOT / "tests" / "realworld" / "flake8",
    "jc": ROOT / "tests" / "realworld" / "jc",
    "glances": ROOT / "tests" / "realworld" / "glances",
    "awscli": ROOT / "tests" / "realworld" / "awscli",
}


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def _worktree(ref: str, where: Path) -> Path:
    tree = where / f"ref-{ref[:12]}"
    subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", tree, ref], check=True)
    # recipes and locks this checkout has and the reference lacks (new real CLIs)
    for name, recipe in RECIPES.items():
        there = tree / recipe.relative_to(ROOT)
        if not there.exists():
            shutil.copytree(recipe, there)
        locks = tree / "lockfiles" / name
        if not locks.exists():
            shutil.copytree(ROOT / "lockfiles" / name, locks)
    return tree


def build_time(source: Path, recipe: Path, toolchains: Path, work: Path) -> tuple[float, int]:
    """Seconds of the cold build, and the binary's size in bytes (0: it failed)."""
    cache = work / "cache"
    cache.mkdir(parents=True)
    shutil.copytree(toolchains / "toolchain", cache / "toolchain", symlinks=True)
    env = {**os.environ, "PYTHONPATH": str(source), "CI": "true"}
    base = [sys.executable, "-m", "buildkit", "build", str(recipe), "--target", "linux-amd64"]
    base += ["--cache-dir", str(cache)]
    # from the source folder: "python -m" puts the working folder first on sys.path
    subprocess.run([*base, "--format", "shiv", "--out", str(work / "zip")], env=env, cwd=source,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    started = time.monotonic()
    proc = subprocess.run([*base, "--format", "nuitka", "--out", str(work / "dist")],
                          env=env, cwd=source, check=False, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)  # fmt: skip
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        print(f"  build failed ({proc.returncode}): {proc.stderr[-1500:]}", flush=True)
        return elapsed, 0
    binary = next(p for p in (work / "dist").iterdir() if p.name.endswith("-linux-amd64"))
    return elapsed, binary.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", help="an earlier commit to time the same way")
    parser.add_argument("--recipes", default="portcheck,flake8,jc")
    parser.add_argument("--only-ref", action="store_true", help="time the reference only")
    parser.add_argument("--toolchain-cache", type=Path,
                        default=Path.home() / ".cache" / "buildkit")  # fmt: skip
    opts = parser.parse_args()
    names = opts.recipes.split(",")
    with tempfile.TemporaryDirectory(prefix="bk-bench-") as tmp:
        where = Path(tmp)
        sources = {"this checkout": ROOT}
        if opts.ref:
            ref = {f"ref {opts.ref[:12]}": _worktree(opts.ref, where)}
            sources = ref if opts.only_ref else {**ref, **sources}
        print(f"cold linux-amd64 nuitka builds on {os.cpu_count()} cores, load {_load()}")
        try:
            for name in names:
                times = {}
                for label, source in sources.items():
                    t, size = build_time(source, RECIPES[name], opts.toolchain_cache,
                                         where / f"{name}-{label.replace(' ', '-')}")  # fmt: skip
                    times[label] = t
                    print(f"{name:10} {label:22} {t / 60:6.1f} min  {size / 1e6:6.1f} MB  "
                          f"(load {_load()})", flush=True)  # fmt: skip
                if len(times) == 2:
                    before, after = times.values()
                    print(f"{name:10} {'ratio':22} {after / before:6.2f}x")
        finally:
            if opts.ref:
                subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force",
                                str(where / f"ref-{opts.ref[:12]}")], check=False)  # fmt: skip


if __name__ == "__main__":
    main()
