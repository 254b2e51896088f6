"""Benchmark: a onefile binary with its payload stored (the default) against zstandard.

Run with the toolkit's venv:  .venv/bin/python bench/nuitka_compress.py [--recipes portcheck,jc]

Each recipe's linux-amd64 binary is built twice in one run, ``[formats] nuitka`` as the
recipe has it and with ``compress = "zstd"`` added, and printed: the file's size, the
build's wall time, the warm start (extraction cache filled: Nuitka's cached mode reads
and checksums every extracted file at each start, and a compressed payload is inflated
to walk it) and the first start (empty cache), medians of interleaved runs. portcheck
probes a closed port (the program does as little as it can: start-up dominates) and is
also run by ``/usr/bin/python3.11 -I`` from its sources with bytecode cached, the
baseline; jc prints its version (a 47 MB payload). The machine's load is printed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from common import build_onefile, load, onefile_options, real_python  # noqa: E402

RECIPES = {
    "portcheck": ROOT / "recipes" / "portcheck",
    "jc": ROOT / "tests" / "realworld" / "jc",
}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _timed(cmd: list[str], env: dict[str, str], code: int) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          check=False)  # fmt: skip
    elapsed = time.perf_counter() - started
    if proc.returncode != code:
        raise SystemExit(f"{cmd[0]} exited {proc.returncode}: {proc.stderr.decode()[-400:]}")
    return elapsed


def _variant(name: str, tmp: Path, compress: str) -> Path:
    project = tmp / compress
    recipe = project / RECIPES[name].relative_to(ROOT)
    shutil.copytree(RECIPES[name], recipe, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "lockfiles" / name, project / "lockfiles" / name)
    if compress != "none":
        toml = recipe / "recipe.toml"
        text, n = re.subn(r"^nuitka = \{ ", f'nuitka = {{ compress = "{compress}", ',
                          toml.read_text(), count=1, flags=re.M)  # fmt: skip
        assert n == 1, f"{toml}: no one-line [formats] nuitka table to add compress to"
        toml.write_text(text)
    return recipe


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    opts = onefile_options(parser, "portcheck,jc")
    runs = opts.runs
    py = real_python()
    print(f"linux-amd64 onefile binaries on {os.cpu_count()} cores, load {load()}; "
          f"medians of {runs} interleaved runs")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bk-bench-compress-") as tmp_name:
        tmp = Path(tmp_name)
        cache = tmp / "cache"  # holding only the toolchain, built once before
        shutil.copytree(opts.toolchain_cache / "toolchain", cache / "toolchain", symlinks=True)
        for name in opts.recipes.split(","):
            built: dict[str, tuple[float, Path]] = {}
            for compress in ("none", "zstd"):
                recipe = _variant(name, tmp / name, compress)
                built[compress] = build_onefile(ROOT, recipe, tmp / name / compress / "dist", cache)
            port = _closed_port()
            args, code = (([f"127.0.0.1:{port}", "--timeout", "1"], 1) if name == "portcheck"
                          else (["--version"], 0))  # fmt: skip
            env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp / "home"), "LANG": "C.UTF-8"}
            cmds = {f"onefile, {c}": [str(p), *args] for c, (_, p) in built.items()}
            if name == "portcheck":
                src = tmp / name / "none" / "recipes" / "portcheck" / "src"
                cmds = {
                    "python3.11 -I": [str(py), "-I", "-c", "import sys; sys.path.append("
                                      f"{str(src)!r}); from portcheck.cli import main; "
                                      "sys.exit(main())", *args],
                    **cmds,
                }  # fmt: skip
                # its bytecode cached, as an installed script's is
                subprocess.run([str(py), "-m", "compileall", "-q", str(src)], check=True)
            warm_env = {**env, "XDG_CACHE_HOME": str(tmp / "xdg-warm")}
            for cmd in cmds.values():
                _timed(cmd, warm_env, code)
            warm: dict[str, list[float]] = {k: [] for k in cmds}
            cold: dict[str, list[float]] = {k: [] for k in cmds if k.startswith("onefile")}
            for i in range(runs):
                for label, cmd in cmds.items():
                    warm[label].append(_timed(cmd, warm_env, code))
                for label, times in cold.items():
                    fresh = {**env, "XDG_CACHE_HOME": str(tmp / f"xdg-{label[9:]}-{i}")}
                    times.append(_timed(cmds[label], fresh, code))
                    shutil.rmtree(fresh["XDG_CACHE_HOME"], ignore_errors=True)
            print(f"\n{name} ({' '.join(args)}), load {load()}")
            if name == "portcheck":
                base = statistics.median(warm["python3.11 -I"])
                print(f"  baseline: {py} -I, bytecode cached: {base * 1000:.1f} ms")
            stored = statistics.median(warm["onefile, none"])
            for compress, (build_s, path) in built.items():
                label = f"onefile, {compress}"
                t, first = statistics.median(warm[label]), statistics.median(cold[label])
                vs = f"  {t / base:4.2f}x baseline" if name == "portcheck" else ""
                size = path.stat().st_size / 1e6
                print(f"  {compress:5} {size:6.1f} MB  build {build_s:5.0f} s  "
                      f"warm {t * 1000:6.1f} ms ({t / stored:4.2f}x stored){vs}  "
                      f"first start {first * 1000:6.1f} ms")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
