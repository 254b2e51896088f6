"""hostmetrics -- CPU, memory and disk usage of this host, with optional thresholds.

Exit 0 when every measured value is under its threshold, 1 when one is over, 2 on bad
usage. --json prints one document for machines.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import psutil


def collect(paths: list[str], interval: float) -> dict[str, Any]:
    mem = psutil.virtual_memory()
    disks = []
    for path in paths:
        usage = psutil.disk_usage(path)
        disks.append({"path": path, "percent": usage.percent, "total": usage.total})
    return {
        "cpu_percent": psutil.cpu_percent(interval=interval),
        "cpu_count": psutil.cpu_count(),
        "load_average": [round(x, 2) for x in psutil.getloadavg()],
        "memory_percent": mem.percent,
        "memory_total": mem.total,
        "disks": disks,
    }


def over(report: dict[str, Any], max_cpu: float, max_mem: float, max_disk: float) -> list[str]:
    problems = []
    if report["cpu_percent"] > max_cpu:
        problems.append(f"cpu {report['cpu_percent']}% > {max_cpu}%")
    if report["memory_percent"] > max_mem:
        problems.append(f"memory {report['memory_percent']}% > {max_mem}%")
    problems += [
        f"disk {d['path']} {d['percent']}% > {max_disk}%"
        for d in report["disks"]
        if d["percent"] > max_disk
    ]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hostmetrics", description=__doc__.split("\n")[0])
    parser.add_argument("--disk", action="append", metavar="PATH", help="mount to report")
    parser.add_argument("--interval", type=float, default=0.2, help="CPU sampling seconds")
    parser.add_argument("--max-cpu", type=float, default=100.0, metavar="PCT")
    parser.add_argument("--max-memory", type=float, default=100.0, metavar="PCT")
    parser.add_argument("--max-disk", type=float, default=100.0, metavar="PCT")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    args = parser.parse_args(argv)
    try:
        report = collect(args.disk or ["/"], args.interval)
    except OSError as exc:
        parser.error(f"cannot read {exc.filename or 'a metric'}: {exc.strerror}")
    problems = over(report, args.max_cpu, args.max_memory, args.max_disk)
    report["problems"] = problems
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(
            f"cpu     {report['cpu_percent']:5.1f}%  ({report['cpu_count']} cpus, "
            f"load {' '.join(map(str, report['load_average']))})"
        )
        print(f"memory  {report['memory_percent']:5.1f}%  of {report['memory_total'] >> 20} MiB")
        for d in report["disks"]:
            print(f"disk    {d['percent']:5.1f}%  {d['path']}")
        for p in problems:
            print(f"OVER    {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
