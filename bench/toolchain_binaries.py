"""Benchmark: portcheck's Nuitka binary built with the hermetic toolchain, against the one
built the old way (the build host's Python and gcc) and against the bare interpreter.

Run with the toolkit's venv:  .venv/bin/python bench/toolchain_binaries.py

The old way is buildkit at ``--baseline-rev`` (default: the last commit before the
toolchain), checked out into a temporary git worktree and run with the same venv. Printed
from this one run, as ratios against ``python3.11 -I`` on the same script (the system's
interpreter, no site .pth files; it is printed):

* warm start: median wall time of N interleaved runs (extraction caches filled);
* peak RSS: the largest resident set of the process tree, median of N runs;
* size of each binary and the newest GLIBC_ version each needs (objdump -T);
* the toolchain's cold build time: from its record (``toolchain.json``), or measured
  now with ``--cold`` (a fresh toolchain folder; about 10-15 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from common import real_python, tcp_listener  # noqa: E402
from nuitka_start_and_rebuild import medians  # noqa: E402

HOST = "linux-amd64"
BASELINE_REV = "831e54e"


def build(source: Path, project: Path, out: Path, cache: Path, env: dict[str, str]) -> Path:
    """portcheck's onefile built by the buildkit at ``source``."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "buildkit",
            "build",
            str(project / "recipes" / "portcheck"),
            "--format",
            "nuitka",
            "--target",
            HOST,
            "--out",
            str(out),
            "--cache-dir",
            str(cache),
            "--json",
        ],
        check=False,
        capture_output=True,
        text=True,
        cwd=project,
        env={**env, "CI": "true", "PYTHONPATH": str(source)},
    )
    if proc.returncode != 0:
        raise SystemExit(f"build with {source} failed:\n{proc.stderr[-3000:]}")
    (artifact,) = json.loads(proc.stdout)["artifacts"]
    return Path(str(artifact["path"]))


def newest_glibc(path: Path) -> str:
    out = subprocess.run(
        ["objdump", "-T", str(path)], check=False, capture_output=True, text=True
    ).stdout
    found = {tuple(int(p) for p in v.split(".")) for v in re.findall(r"GLIBC_([\d.]+\d)", out)}
    return "GLIBC_" + ".".join(map(str, max(found))) if found else "none"


def toolchain_seconds(cold: bool, tmp: Path) -> tuple[float, str]:
    if cold:
        env = {**os.environ, "BUILDKIT_TOOLCHAIN_DIR": str(tmp / "toolchain"), "CI": "true"}
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "buildkit", "toolchain", "build"],
            check=True,
            env=env,
            capture_output=True,
        )
        return time.perf_counter() - started, "measured now (--cold)"
    proc = subprocess.run(
        [sys.executable, "-m", "buildkit", "toolchain", "status", "--json", "--target", HOST],
        check=True,
        capture_output=True,
        text=True,
    )
    (state,) = json.loads(proc.stdout)
    record = json.loads((Path(state["folder"]) / "toolchain.json").read_text())
    return float(record["seconds"]), f"from {state['folder']}/toolchain.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=21, help="timed runs per command (>= 10)")
    parser.add_argument(
        "--baseline-rev", default=BASELINE_REV, help="buildkit before the toolchain"
    )
    parser.add_argument("--cold", action="store_true", help="build a fresh toolchain and time it")
    opts = parser.parse_args()
    runs = max(10, opts.runs)
    with tempfile.TemporaryDirectory(prefix="buildkit-bench-toolchain-") as name:
        tmp = Path(name)
        old = tmp / "old"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old), opts.baseline_rev],
            check=True,
            capture_output=True,
        )
        try:
            binaries = {}
            for label, source in (("toolchain", ROOT), ("host gcc+python", old)):
                project = tmp / f"project-{label.split()[0]}"
                shutil.copytree(
                    source / "recipes" / "portcheck",
                    project / "recipes" / "portcheck",
                    ignore=shutil.ignore_patterns("tests", "__pycache__"),
                )
                shutil.copytree(
                    source / "lockfiles" / "portcheck", project / "lockfiles" / "portcheck"
                )
                binaries[label] = build(
                    source,
                    project,
                    tmp / f"dist-{label.split()[0]}",
                    tmp / f"cache-{label.split()[0]}",
                    dict(os.environ),
                )
            listener, port = tcp_listener()
            args = [f"127.0.0.1:{port}"]
            py = real_python()
            src = ROOT / "recipes" / "portcheck" / "src"
            env = {
                "PATH": "/usr/bin:/bin",
                "HOME": str(tmp / "home"),
                "XDG_CACHE_HOME": str(tmp / "xdg"),
            }
            code = (
                f"import sys; sys.path.append({str(src)!r}); "
                "from portcheck.cli import main; sys.exit(main())"
            )
            cmds = {
                f"{py.name} -I": [str(py), "-I", "-c", code, *args],
                **{f"onefile ({k})": [str(b), *args] for k, b in binaries.items()},
            }
            got = medians(cmds, env, runs)
            listener.close()
            seconds, how = toolchain_seconds(opts.cold, tmp)
            sizes = {k: b.stat().st_size / 1e6 for k, b in binaries.items()}
            glibc = {k: newest_glibc(b) for k, b in binaries.items()}
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)],
                check=False,
                capture_output=True,
            )
    base_t, base_rss = got[f"{py.name} -I"]
    print(f"portcheck onefile, median of {runs} runs; baseline: {py} -I (no site .pth files)")
    for label, (t, r) in got.items():
        extra = ""
        for k in binaries:
            if label.endswith(f"({k})"):
                extra = f"  {sizes[k]:5.1f} MB, needs {glibc[k]}"
        print(
            f"  {label:<28} {t * 1000:7.1f} ms {t / base_t:5.2f}x   "
            f"peak RSS {r / 1024:6.1f} MiB {r / base_rss:5.2f}x{extra}"
        )
    t_new, r_new = got["onefile (toolchain)"]
    t_old, r_old = got["onefile (host gcc+python)"]
    print(
        f"\ntoolchain binary against the host-built one: start {t_new / t_old:.2f}x, "
        f"peak RSS {r_new / r_old:.2f}x"
    )
    print(f"toolchain cold build: {seconds:.0f} s ({how})")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "toolchain_binaries.json").write_text(
        json.dumps(
            {
                "baseline": str(py),
                "runs": runs,
                "start": {k: {"seconds": t, "rss_kib": r} for k, (t, r) in got.items()},
                "size_mb": sizes,
                "glibc": glibc,
                "toolchain_build_s": seconds,
            },
            indent=2,
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
