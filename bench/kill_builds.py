"""Kill `buildkit lock` + `buildkit build` with SIGKILL at many points, then check.

A reference job runs undisturbed first (lock a recipe for one target into an empty
lockfiles folder, then build its zipapps with an empty cache: lock, fetch, build, audit
and release all happen). Then each run starts the same job from empty folders at the
same paths and sends SIGKILL to the running buildkit at a point in one phase: the phases
take turns, and the point within a phase moves from its start to its end over the runs
(its length taken from the reference job). After each kill it checks

* the release folder: every SHA256SUMS line and manifest.json entry names a file with
  those bytes, and every other file under a final name has the reference's bytes;
* the lockfiles: each is absent or the reference's;
* the cache: every entry (wheels, blobs, actions, trees) is absent or the reference's;

then runs the job again in the same folders and checks it succeeds, leaves no leftover,
verifies (`buildkit verify`) and gives exactly the reference's files. It ends with
``N runs, C corrupt files, I inconsistent cache entries`` and exits 1 if either is not 0.

    python bench/kill_builds.py --runs 30 [--recipe DIR] [--format F]... [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from buildkit.release.publish import leftovers, listing_problems
from buildkit.request import BuildRequest

ROOT = Path(__file__).resolve().parent.parent
TARGET = "linux-amd64"
FORMATS = ("pex", "shiv")
CACHE_KINDS = ("wheels", "blobs", "actions", "trees")
# The first line each phase logs (CI=true: plain "buildkit: ..." lines on stderr).
PHASES = (
    ("lock", "locking "),
    ("fetch", "checking wheels"),
    ("build", "building "),
    ("audit", "auditing "),
    ("release", "publishing "),
)


@dataclass(kw_only=True)
class Work:
    base: Path
    recipe: Path
    formats: tuple[str, ...] = FORMATS
    lockfiles: Path = field(init=False)
    out: Path = field(init=False)
    cache: Path = field(init=False)
    tmp: Path = field(init=False)  # TMPDIR: what a SIGKILL leaves there is cleared here

    def __post_init__(self) -> None:
        self.lockfiles, self.out, self.cache, self.tmp = (
            self.base / name for name in ("lockfiles", "dist", "cache", "tmp")
        )

    def commands(self) -> list[list[str]]:
        lock = [sys.executable, "-m", "buildkit", "lock", str(self.recipe), "--target", TARGET,
                "--lockfiles", str(self.lockfiles)]  # fmt: skip
        build = BuildRequest(
            recipe=self.recipe,
            out=self.out,
            targets=(TARGET,),
            formats=self.formats,
            cache_dir=self.cache,
            lockfiles=self.lockfiles,
        ).to_argv(sys.executable)
        return [lock, build]

    def clear(self) -> None:
        for path in (self.lockfiles, self.out, self.cache, self.tmp):
            shutil.rmtree(path, ignore_errors=True)
        self.lockfiles.mkdir(parents=True)
        self.tmp.mkdir()


@dataclass(kw_only=True)
class Job:
    """One run of the job; ``kill_at``: (phase, seconds after its first line)."""

    work: Work
    kill_at: tuple[str, float] | None = None
    seen: dict[str, float] = field(default_factory=dict)  # phase -> time of its first line
    killed_in: str | None = None
    returncodes: list[int] = field(default_factory=list)
    output: str = ""

    def run(self) -> None:
        env = {**os.environ, "CI": "true", "TMPDIR": str(self.work.tmp)}
        start = time.monotonic()
        for cmd in self.work.commands():
            proc = subprocess.Popen(
                cmd,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                bufsize=1,
            )
            assert proc.stderr is not None
            deadline: float | None = None
            for line in proc.stderr:
                self.output += line
                now = time.monotonic() - start
                for phase, marker in PHASES:
                    if phase not in self.seen and line.startswith("buildkit: ") and marker in line:
                        self.seen[phase] = now
                        if self.kill_at and self.kill_at[0] == phase:
                            deadline = time.monotonic() + self.kill_at[1]
                if deadline is not None:
                    break
            if deadline is not None:
                time.sleep(max(0.0, deadline - time.monotonic()))
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                self.killed_in = self.kill_at[0] if self.kill_at else None
                self.returncodes.append(proc.returncode)
                if proc.stderr:
                    proc.stderr.close()
                return
            self.returncodes.append(proc.wait())
            if proc.returncode != 0:
                return
        self.seen["end"] = time.monotonic() - start


def files_of(folder: Path) -> dict[str, bytes]:
    if not folder.is_dir():
        return {}
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def cache_entries(cache: Path) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for kind in CACHE_KINDS:
        out.update({f"{kind}/{k}": v for k, v in files_of(cache / kind).items()})
    return out


Reference = dict[str, dict[str, bytes]]  # "out", "lockfiles", "cache" -> files


@dataclass(kw_only=True)
class Tally:
    runs: int = 0
    corrupt: list[str] = field(default_factory=list)
    inconsistent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    by_phase: dict[str, int] = field(default_factory=dict)


def check_after_kill(work: Work, ref: Reference, run: int, tally: Tally) -> None:
    where = f"run {run}"
    tally.corrupt += [f"{where}: {p}" for p in listing_problems(work.out)]
    leftover = {p.name for p in leftovers(work.out)}
    for name, data in files_of(work.out).items():
        top = name.split("/", 1)[0]
        if top in leftover or name in ("SHA256SUMS", "manifest.json"):
            continue
        if ref["out"].get(name) != data:
            tally.corrupt.append(f"{where}: dist/{name} is not the reference's")
    for name, data in files_of(work.lockfiles).items():
        if ref["lockfiles"].get(name) != data:
            tally.corrupt.append(f"{where}: lockfiles/{name} is torn or differs")
    for name, data in cache_entries(work.cache).items():
        if ref["cache"].get(name) != data:
            tally.inconsistent.append(f"{where}: cache {name} is torn or differs")


def check_after_resume(work: Work, job: Job, ref: Reference, run: int, tally: Tally) -> None:
    where = f"run {run} (resumed)"
    if job.returncodes != [0, 0]:
        tally.failed.append(f"{where}: exit codes {job.returncodes}\n{job.output[-2000:]}")
        return
    if rest := leftovers(work.out):
        tally.corrupt.append(f"{where}: leftovers in dist: {[p.name for p in rest]}")
    got = files_of(work.out)
    if got != ref["out"]:
        differ = sorted(
            set(got) ^ set(ref["out"]) | {n for n in got if got[n] != ref["out"].get(n)}
        )
        tally.corrupt.append(f"{where}: dist differs from the reference: {differ}")
    for name, data in cache_entries(work.cache).items():
        if ref["cache"].get(name) != data:
            tally.inconsistent.append(f"{where}: cache {name} differs")
    tmp = work.cache / "tmp"
    stale = [p.name for p in tmp.iterdir() if p.is_dir()] if tmp.is_dir() else []
    if stale:
        tally.inconsistent.append(f"{where}: cache tmp/ still holds {stale}")
    verify = subprocess.run(
        [sys.executable, "-m", "buildkit", "verify", str(work.out)],
        capture_output=True,
        text=True,
        check=False,
    )
    if verify.returncode != 0:
        tally.corrupt.append(f"{where}: buildkit verify failed:\n{verify.stdout}{verify.stderr}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--recipe", type=Path, default=ROOT / "recipes" / "hostmetrics")
    ap.add_argument(
        "--format", action="append", choices=("pex", "shiv", "nuitka"), help="default: pex, shiv"
    )
    ap.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = ap.parse_args(argv)
    base = args.keep or Path(tempfile.mkdtemp(prefix="kill-builds-"))
    work = Work(
        base=base / "job", recipe=args.recipe.resolve(), formats=tuple(args.format or FORMATS)
    )
    tally = Tally()
    try:
        work.clear()
        reference = Job(work=work)
        reference.run()
        if reference.returncodes != [0, 0]:
            print(f"the undisturbed job failed: {reference.returncodes}\n{reference.output}")
            return 2
        missing = [p for p, _ in PHASES if p not in reference.seen]
        if missing:
            print(f"the job never logged the start of: {', '.join(missing)}\n{reference.output}")
            return 2
        marks = [reference.seen[p] for p, _ in PHASES] + [reference.seen["end"]]
        length = {p: max(0.0, marks[i + 1] - marks[i]) for i, (p, _) in enumerate(PHASES)}
        ref = {
            "out": files_of(work.out),
            "lockfiles": files_of(work.lockfiles),
            "cache": cache_entries(work.cache),
        }
        print(
            "reference job: "
            + ", ".join(f"{p} {length[p]:.2f} s" for p, _ in PHASES)
            + f"; {len(ref['out'])} release files, {len(ref['cache'])} cache entries",
            flush=True,
        )
        for run in range(1, args.runs + 1):
            phase = PHASES[(run - 1) % len(PHASES)][0]
            turn = (run - 1) // len(PHASES)
            turns = max(1, (args.runs + len(PHASES) - 1) // len(PHASES))
            delay = length[phase] * (turn + 0.5) / turns
            work.clear()
            job = Job(work=work, kill_at=(phase, delay))
            job.run()
            tally.runs += 1
            landed = job.killed_in or "after the end"
            tally.by_phase[landed] = tally.by_phase.get(landed, 0) + 1
            check_after_kill(work, ref, run, tally)
            resumed = Job(work=work)
            resumed.run()
            check_after_resume(work, resumed, ref, run, tally)
            print(f"run {run}: SIGKILL in {landed} at +{delay:.2f} s; checked", flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    for problem in tally.corrupt + tally.inconsistent + tally.failed:
        print("problem:", problem)
    print("kills by phase: " + ", ".join(f"{k} {v}" for k, v in tally.by_phase.items()))
    print(
        f"{tally.runs} runs, {len(tally.corrupt)} corrupt files, "
        f"{len(tally.inconsistent)} inconsistent cache entries"
        + (f", {len(tally.failed)} failed resumes" if tally.failed else "")
    )
    return 1 if tally.corrupt or tally.inconsistent or tally.failed else 0


if __name__ == "__main__":
    sys.exit(main())
