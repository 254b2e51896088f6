"""Benchmark: whole-process `buildkit audit DIR` against Debian's `checksec --dir=DIR` on
the same corpus of >= 300 real ELF files, with the agreement of their verdicts.

Run with the toolkit's venv:  .venv/bin/python bench/audit_vs_checksec.py

The corpus is linked (or copied) into one folder: by default every ELF file under
/usr/lib/x86_64-linux-gnu, /usr/bin, /usr/sbin, /usr/libexec and CPython's extension
modules (``--corpus all``: about 1700 files here, 1.3 GB, large ones such as libLLVM
included); ``--corpus oracle`` takes the 326 files of the oracle test
(tests/checksec_oracle.py). Both tools have a fixed start cost (buildkit: Python and
LIEF's module initialisation, about 0.5 to 0.9 s here) and a cost per file; the bench
prints both, so the ratio for any corpus size can be read off. Both tools run as the user
would run them, as whole processes, interleaved, N times; the medians are compared.
Goals: buildkit audit >= 50x faster on ``all``, >= 25x on ``oracle``, and one small file
audited within 1.2 s, whole process. The RELRO, canary, NX and PIE verdicts of both are
compared file by file; disagreements where checksec's rule is wrong are listed with why.
"""

from __future__ import annotations

import argparse
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
sys.path.insert(0, str(ROOT))

from buildkit.audit.findings import Check, FileReport, State  # noqa: E402
from tests.checksec_oracle import compare, is_elf, system_corpus  # noqa: E402


def all_corpus() -> list[Path]:
    """Every ELF file (not symlinks) under the system's library and program folders and
    CPython's extension modules."""
    stdlib = Path(sys.base_prefix) / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    roots = ("/usr/lib/x86_64-linux-gnu", "/usr/bin", "/usr/sbin", "/usr/libexec")
    picked = []
    for root in (*map(Path, roots), stdlib / "lib-dynload"):
        for path in sorted(root.rglob("*")):
            try:
                if path.is_file() and not path.is_symlink() and is_elf(path):
                    picked.append(path)
            except OSError:
                continue
    return picked


def link_or_copy(src: Path, dest: Path) -> None:
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def timed(cmd: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{cmd[0]} exited {proc.returncode}: {proc.stderr[-2000:]}")
    return elapsed, proc.stdout


def reports_from_json(doc: dict) -> dict[str, FileReport]:  # type: ignore[type-arg]
    out = {}
    for f in doc["files"]:
        checks = tuple(
            Check(name=n, state=State(c["state"]), evidence=c["evidence"])
            for n, c in f["checks"].items()
        )
        out[f["path"]] = FileReport(
            path=f["path"], format=f["format"], kind=f["kind"], arch=f["arch"],
            libc=f["libc"], checks=checks,
        )  # fmt: skip
    return out


#: The ratio each corpus must reach: the oracle corpus is small (326 files), so the fixed
#: start (LIEF's import) weighs more in it than in the whole system's 1700 files.
GOAL = {"all": 50, "oracle": 25}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--corpus", choices=("all", "oracle"), default="all")
    args = parser.parse_args()
    buildkit = str(ROOT / ".venv" / "bin" / "buildkit")
    with tempfile.TemporaryDirectory(prefix="bk-audit-bench-") as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        files = all_corpus() if args.corpus == "all" else system_corpus()
        for index, path in enumerate(files):
            link_or_copy(path, corpus / f"{index:04d}-{path.name}")
        count = len(list(corpus.iterdir()))
        size_mb = sum(p.stat().st_size for p in corpus.iterdir()) / 1e6
        one = Path(tmp) / "one"  # the fixed start cost: a folder with one small file
        one.mkdir()
        link_or_copy(min(files, key=lambda p: p.stat().st_size), one / "small")
        ours_t, theirs_t, ours_one, theirs_one = [], [], [], []
        ours_out = theirs_out = ""
        for _ in range(args.runs):
            t, theirs_out = timed(["checksec", f"--dir={corpus}", "--output=json"])
            theirs_t.append(t)
            t, ours_out = timed([buildkit, "audit", str(corpus), "--json"])
            ours_t.append(t)
            theirs_one.append(timed(["checksec", f"--dir={one}", "--output=json"])[0])
            ours_one.append(timed([buildkit, "audit", str(one), "--json"])[0])
    ours_s, theirs_s = statistics.median(ours_t), statistics.median(theirs_t)
    ours_fixed, theirs_fixed = statistics.median(ours_one), statistics.median(theirs_one)
    reports = reports_from_json(json.loads(ours_out))
    oracle = json.loads(theirs_out)
    compared, explained, unexplained = compare(reports, oracle)
    agreed = compared - len(explained) - len(unexplained)
    ratio = theirs_s / ours_s
    print(f"corpus: {count} ELF files, {size_mb:.0f} MB; median of {args.runs} interleaved runs")
    print(f"  checksec --dir     {theirs_s:7.2f} s")
    print(f"  buildkit audit     {ours_s:7.2f} s   {ratio:5.1f}x faster")
    for name, total, fixed in (
        ("checksec", theirs_s, theirs_fixed),
        ("buildkit", ours_s, ours_fixed),
    ):
        per_file = (total - fixed) / max(count - 1, 1) * 1000
        print(f"  {name}: {fixed:.2f} s to start (one small file), {per_file:.2f} ms per file")
    print(
        f"  verdicts (relro, canary, nx, pie): {compared} compared, {agreed} agree "
        f"({100 * agreed / compared:.1f}%), {len(explained)} explained, "
        f"{len(unexplained)} unexplained"
    )
    for line in explained + unexplained:
        print(f"    {line}")
    want = GOAL[args.corpus]
    goals = {
        f"buildkit audit >= {want}x faster than checksec --dir": ratio >= want,
        "buildkit audit of one small file, whole process <= 1.2 s": ours_fixed <= 1.2,
        "no unexplained disagreement with checksec": not unexplained,
    }
    print()
    for goal, met in goals.items():
        print(f"{'met' if met else 'MISSED':<7}{goal}")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"audit_vs_checksec-{args.corpus}.json").write_text(json.dumps({
        "files": count, "checksec_s": theirs_s, "buildkit_s": ours_s, "ratio": ratio,
        "checksec_start_s": theirs_fixed, "buildkit_start_s": ours_fixed,
        "compared": compared, "agreed": agreed, "explained": explained,
        "unexplained": unexplained, "goals": goals}, indent=2) + "\n")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
