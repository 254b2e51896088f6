"""Benchmark: native (Nuitka) binaries built on the emulated arm64 builders.

Run as root with the toolkit's venv, after ``ci/emulated-hosts`` (or ``buildkit host
create`` for each host):  .venv/bin/python bench/emulated_builds.py

For each target (linux-arm64, alpine-arm64) and recipe (default: portcheck, hostmetrics),
printed from this one run:

* **build time** of ``buildkit build --builder TARGET`` into an empty cache (the
  toolchain, the hosts and their toolkit venvs are made first and shared, as in CI), and
  where it goes: the Python phase (Nuitka under QEMU, up to "Running C compilation") and
  the C phase (every compile and link: zig, native, cross-compiling);
* **before**: portcheck's linux-arm64 build by buildkit at ``--baseline-rev`` (the last
  commit before the builders used the toolchain: the builder's own Python and gcc, all
  under emulation), whatever ``--targets`` says; ``--no-baseline`` skips it (it takes
  15 to 20 minutes);
* **reproducible**: the same build again into another empty cache; the two sha256 must
  be equal;
* **start on the emulated host**: median wall time of ``--runs`` interleaved warm runs of
  the binary, the recipe's shiv zipapp for the same target and, as the baseline, the
  host's own ``python3 -I`` running the script from its source folder (no site .pth
  files; printed), timed by a harness running inside the host (so the cost of entering
  the root is not counted). Every figure is emulated: ratios matter, not milliseconds.

Results also go to ``bench/results/emulated_builds.json``; a run of some targets keeps
the rows of the others from earlier runs there (and says so when it prints them).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from buildkit.cache import Cache  # noqa: E402
from buildkit.hosts import all_hosts  # noqa: E402
from buildkit.hosts.store import run_in, use  # noqa: E402

BASELINE_REV = "4521357"
TARGETS = ("linux-arm64", "alpine-arm64")
ARGS = {"portcheck": ["127.0.0.1:{port}"], "hostmetrics": ["--interval", "0.1", "--json"]}
PHASES = {"c": "Running C compilation", "done": "Successfully created"}

# Runs inside the emulated host: N interleaved warm runs of each command, medians as JSON.
HARNESS = r"""
import json, socket, statistics, subprocess, sys, threading, time
spec = json.loads(sys.argv[1])
listener = socket.socket(); listener.bind(("127.0.0.1", 0)); listener.listen(64)
def drain():
    while True:
        try: listener.accept()[0].close()
        except OSError: return
threading.Thread(target=drain, daemon=True).start()
port = str(listener.getsockname()[1])
cmds = {k: [a.replace("{port}", port) for a in v] for k, v in spec["cmds"].items()}
for argv in cmds.values():  # fill the extraction caches; each must work
    p = subprocess.run(argv, capture_output=True, text=True)
    if p.returncode not in (0, 1) or not p.stdout:
        sys.exit(f"{argv[0]} failed ({p.returncode}): {p.stderr[-800:]}")
times = {k: [] for k in cmds}
for _ in range(spec["runs"]):
    for k, argv in cmds.items():
        t = time.perf_counter(); subprocess.run(argv, capture_output=True)
        times[k].append(time.perf_counter() - t)
print(json.dumps({k: statistics.median(v) for k, v in times.items()}))
"""


def hosts_env() -> dict[str, str]:
    env = dict(os.environ, CI="true")
    env.setdefault("BUILDKIT_HOSTS_DIR", str(Path.home() / ".cache/buildkit-test-hosts/hosts"))
    env.setdefault("BUILDKIT_TOOLCHAIN_DIR", str(Path.home() / ".cache/buildkit-test-toolchain"))
    return env


def build(  # noqa: PLR0917
    source: Path, recipe: str, target: str, fmt: str, out: Path, cache: Path, builder: bool
) -> dict[str, Any]:
    """One build; its wall time, the time each phase began (from Nuitka's output), the
    artifact's path and sha256."""
    cmd = [sys.executable, "-m", "buildkit", "build", str(source / "recipes" / recipe),
           "--target", target, "--format", fmt, "--out", str(out), "--cache-dir", str(cache),
           "--json", "-v"]  # fmt: skip
    if builder:
        cmd += ["--builder", target]
    env = {**hosts_env(), "PYTHONPATH": str(source)}
    started = time.perf_counter()
    seen: dict[str, float] = {}
    proc = subprocess.Popen(cmd, cwd=source, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    tail: list[str] = []

    def read_stderr() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            tail[:] = [*tail[-40:], line]
            for phase, text in PHASES.items():
                if text in line and phase not in seen:
                    seen[phase] = time.perf_counter() - started

    reader = threading.Thread(target=read_stderr)
    reader.start()
    stdout = proc.stdout.read() if proc.stdout else ""
    proc.wait()
    reader.join()
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{recipe} {target} {fmt} with {source} failed:\n{''.join(tail)}")
    try:
        doc = json.loads(stdout)
    except json.JSONDecodeError:  # the baseline's buildkit let the inner build print first
        doc = json.loads(stdout[stdout.rindex("\n{") + 1 :])
    # a build on a builder reports the files it wrote: the artifact is the one named after
    # the recipe and the target alone (the rest are the release's documents)
    names = [a["name"] for a in doc.get("artifacts", [])] or [
        n for n in doc.get("written", []) if re.fullmatch(rf"{recipe}-[^-]+-{target}", n)
    ]
    path = out / names[0]
    return {
        "seconds": wall,
        "phases": seen,
        "path": str(path),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }


def start_times(target: str, recipe: str, files: dict[str, Path], runs: int) -> dict[str, float]:
    spec = next(h for h in all_hosts().values() if h.target == target and h.qemu)
    cache = Cache(root=Path(hosts_env()["BUILDKIT_HOSTS_DIR"]).parent)
    host = use(spec, cache)
    python = spec.python
    src = ROOT / "recipes" / recipe / "src"
    module = {"portcheck": "portcheck.cli", "hostmetrics": "hostmetrics.cli"}[recipe]
    direct = f"import sys; sys.path.append('/src'); from {module} import main; sys.exit(main())"
    args = ARGS[recipe]
    cmds = {
        f"{Path(python).name} -I (the script)": [python, "-I", "-c", direct, *args],
        **{label: [f"/bench/{p.name}", *args] for label, p in files.items()},
    }
    binds = [(p, f"/bench/{p.name}", True) for p in files.values()] + [(src, "/src", True)]
    if recipe == "hostmetrics":  # psutil for the direct run: from the zipapp's wheel
        cmds.pop(f"{Path(python).name} -I (the script)")
    proc = run_in(host, [python, "-I", "-c", HARNESS, json.dumps({"cmds": cmds, "runs": runs})],
                  binds=binds, capture=True, timeout=3600)  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"start-up harness on {target} failed: {proc.stderr[-2000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


RESULTS = ROOT / "bench" / "results" / "emulated_builds.json"


def earlier() -> dict[str, Any]:
    """The rows of earlier runs: a run of some targets keeps the others' figures."""
    try:
        doc = json.loads(RESULTS.read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def save(results: dict[str, Any]) -> None:
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipes", nargs="+", default=["portcheck", "hostmetrics"])
    parser.add_argument("--targets", nargs="+", default=list(TARGETS))
    parser.add_argument("--runs", type=int, default=11, help="timed runs per command")
    parser.add_argument("--baseline-rev", default=BASELINE_REV)
    parser.add_argument("--no-baseline", action="store_true")
    opts = parser.parse_args()
    os.environ.update(hosts_env())  # the hosts and toolchain every build shares
    results = earlier()
    ran: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="buildkit-bench-emulated-") as name:
        tmp = Path(name)
        for target in opts.targets:
            for recipe in opts.recipes:
                row: dict[str, Any] = {}
                for n in (1, 2):
                    row[f"build{n}"] = build(ROOT, recipe, target, "nuitka", tmp / f"d{n}-{target}",
                                             tmp / f"c{n}-{target}-{recipe}", True)  # fmt: skip
                row["same_sha256"] = row["build1"]["sha256"] == row["build2"]["sha256"]
                shiv = build(ROOT, recipe, target, "shiv", tmp / f"z-{target}",
                             tmp / f"cz-{target}", False)  # fmt: skip
                files = {"onefile binary": Path(row["build1"]["path"]),
                         "shiv zipapp": Path(shiv["path"])}  # fmt: skip
                row["start"] = start_times(target, recipe, files, opts.runs)
                results[f"{recipe} {target}"] = row
                ran.add(f"{recipe} {target}")
                save(results)  # a later failure keeps what was measured
        if not opts.no_baseline:
            old = tmp / "old"
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old),
                            opts.baseline_rev], check=True, capture_output=True)  # fmt: skip
            try:
                results["before: portcheck linux-arm64"] = build(
                    old, "portcheck", "linux-arm64", "nuitka", tmp / "d-old", tmp / "c-old", True
                )
                ran.add("before: portcheck linux-arm64")
                save(results)
            finally:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                                str(old)], check=False, capture_output=True)  # fmt: skip
    for key, row in results.items():
        if key not in ran:
            print(f"{key}: (from an earlier run, kept in {RESULTS.name})")
        if key.startswith("before"):
            print(f"{key} (buildkit {opts.baseline_rev}: the builder's Python and gcc): "
                  f"{row['seconds']:.0f} s")  # fmt: skip
            continue
        b1, b2 = row["build1"], row["build2"]
        c = b1["phases"].get("c", float("nan"))
        done = b1["phases"].get("done", float("nan"))
        print(f"{key}: build {b1['seconds']:.0f} s (Python phase under QEMU until {c:.0f} s, "
              f"C compile and link {done - c:.0f} s); again {b2['seconds']:.0f} s; "
              f"same sha256: {row['same_sha256']} ({b1['sha256'][:16]})")  # fmt: skip
        start = row["start"]
        base_key = next((k for k in start if "-I" in k), None)
        base = start[base_key] if base_key else start["shiv zipapp"]
        label = base_key or "shiv zipapp"
        for k, v in start.items():
            print(f"    start {k:<28} {v * 1000:8.1f} ms {v / base:5.2f}x of {label}")
    before = results.get("before: portcheck linux-arm64")
    after = results.get("portcheck linux-arm64")
    if before and after:
        print(f"portcheck linux-arm64 build, after/before: "
              f"{after['build1']['seconds'] / before['seconds']:.2f}x")  # fmt: skip
    save(results)
    return 0 if all(r.get("same_sha256", True) for r in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
