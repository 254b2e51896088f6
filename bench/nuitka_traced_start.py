"""Benchmark: warm start of traced-compiled onefile binaries, this code against an earlier commit.

Run with the toolkit's venv (the toolchain built once in the cache given):

    .venv/bin/python bench/nuitka_traced_start.py --ref COMMIT [--recipes jc,flake8]

Which modules a traced build compiles to C, and which it ships as bytecode, changes what
the binary does at each start. For each recipe (each with ``trace = "include"``), the
linux-amd64 onefile binary is built by this checkout and by ``--ref`` (in a git
worktree); both, and the baseline, then run one of the recipe's own checked commands,
interleaved, ``--runs`` times each with their extraction caches warm. Printed: the
baseline command and its median, each binary's median, and the ratios measured in this
one run, with the machine's load. The baseline is the program started by Debian's
``/usr/bin/python3.11 -I`` from the lock's wheels installed in a folder, its bytecode
compiled (as an installed script's is). Nothing else should run on the machine.
"""

from __future__ import annotations

import argparse
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

from common import build_onefile, load, onefile_options, real_python  # noqa: E402

#: recipe -> (its folder, the console script's module and function, a checked command:
#: arguments and what it reads on stdin)
RECIPES = {
    "jc": (
        ROOT / "tests" / "realworld" / "jc",
        "jc.cli:main",
        ["--ls"],
        "total 8\n-rw-r--r-- 1 root root 1024 Jan  2 03:04 app.log\n",
    ),
    "flake8": (ROOT / "tests" / "realworld" / "flake8", "flake8.main.cli:main", ["--version"], ""),
}


def _timed(cmd: list[str], env: dict[str, str], stdin: str) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, input=stdin.encode(), stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, check=False)  # fmt: skip
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} exited {proc.returncode}: {proc.stderr.decode()[-400:]}")
    return elapsed


def _installed(name: str, py: Path, where: Path) -> Path:
    """The lock's wheels installed for ``py`` into a folder, bytecode compiled."""
    site = where / "site"
    lock = ROOT / "lockfiles" / name / "linux-amd64.txt"
    uv = Path(sys.executable).with_name("uv")
    subprocess.run([uv, "pip", "install", "--no-config", "--quiet", "--no-deps",
                    "--require-hashes", "--python", py, "--target", site, "-r", lock],
                   check=True)  # fmt: skip
    subprocess.run([py, "-m", "compileall", "-q", site], check=True)
    return site


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ref", required=True, help="the earlier commit to compare with")
    opts = onefile_options(parser, "jc,flake8")
    runs = opts.runs
    py = real_python()
    print(f"linux-amd64 onefile binaries on {os.cpu_count()} cores, load {load()}; "
          f"medians of {runs} interleaved warm runs")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bk-bench-start-") as tmp_name:
        tmp = Path(tmp_name)
        tree = tmp / "ref"
        subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", tree, opts.ref],
                       check=True, capture_output=True)  # fmt: skip
        try:
            for name in opts.recipes.split(","):
                folder, entry, args, stdin = RECIPES[name]
                binaries = {}
                for label, source in ((f"ref {opts.ref[:10]}", tree), ("this checkout", ROOT)):
                    cache = tmp / name / label.replace(" ", "-") / "cache"
                    shutil.copytree(opts.toolchain_cache / "toolchain", cache / "toolchain",
                                    symlinks=True)  # fmt: skip
                    recipe = source / folder.relative_to(ROOT)
                    binaries[label] = build_onefile(source, recipe, cache.parent / "dist", cache)[1]
                site = _installed(name, py, tmp / name)
                module, _, func = entry.partition(":")
                script = (f"import sys; sys.path[:0] = [{str(site)!r}]; "
                          f"from {module} import {func}; sys.exit({func}())")  # fmt: skip
                cmds = {"baseline": [str(py), "-I", "-c", script, *args]}
                cmds |= {label: [str(path), *args] for label, path in binaries.items()}
                env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp / "home"), "LANG": "C.UTF-8",
                       "XDG_CACHE_HOME": str(tmp / "xdg")}  # fmt: skip
                for cmd in cmds.values():  # extraction caches filled
                    _timed(cmd, env, stdin)
                times: dict[str, list[float]] = {k: [] for k in cmds}
                for _ in range(runs):
                    for label, cmd in cmds.items():
                        times[label].append(_timed(cmd, env, stdin))
                med = {k: statistics.median(v) for k, v in times.items()}
                base = med["baseline"]
                print(f"\n{name} {' '.join(args)}, load {load()}")
                print(f"  baseline: {py} -I -c '<{entry}>' {' '.join(args)} "
                      f"(wheels in a folder, bytecode cached): {base * 1000:.1f} ms")  # fmt: skip
                for label, path in binaries.items():
                    t = med[label]
                    print(f"  {label:22} {path.stat().st_size / 1e6:6.1f} MB  "
                          f"{t * 1000:6.1f} ms  {t / base:4.2f}x baseline")  # fmt: skip
                before, after = (med[label] for label in binaries)
                print(f"  this checkout / ref: {after / before:4.2f}x")
        finally:
            subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", tree],
                           check=False)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
