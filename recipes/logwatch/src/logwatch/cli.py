"""logwatch FILE --pattern P [--pattern P...] --threshold N -- alert on log lines.

Counts, with the C scanner in ``logscan``, the lines of the end of FILE (``--tail``
bytes) that hold any pattern; with ``--follow SECONDS`` it watches the lines appended
during that time instead, alerting as soon as the threshold is reached. Exit 0 when the
count stays under the threshold, 1 when it reaches it (an alert), 2 on bad usage or an
unreadable file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from logscan import Counts, count


def read_tail(path: str, size: int) -> bytes:
    with open(path, "rb") as f:
        end = f.seek(0, os.SEEK_END)
        start = max(0, end - size)
        f.seek(start)
        data = f.read()
    if start > 0:  # drop the partial first line
        data = data.partition(b"\n")[2]
    return data


def follow(path: str, patterns: list[str], threshold: int, seconds: float) -> Counts:
    """Count lines appended to ``path`` during ``seconds`` (stop early at the threshold)."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        deadline = time.monotonic() + seconds
        total = Counts(lines=0, matching=0, per_pattern=dict.fromkeys(patterns, 0))
        pending = b""
        while True:
            chunk = f.read()
            if chunk:
                pending += chunk
                complete, _, pending = pending.rpartition(b"\n")
                if complete:
                    got = count(complete + b"\n", patterns)
                    total = Counts(
                        lines=total.lines + got.lines,
                        matching=total.matching + got.matching,
                        per_pattern={
                            p: total.per_pattern[p] + got.per_pattern[p] for p in patterns
                        },
                    )
            if total.matching >= threshold or time.monotonic() >= deadline:
                return total
            time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="logwatch", description=__doc__.split("\n")[0])
    parser.add_argument("file", metavar="FILE")
    parser.add_argument("--pattern", action="append", required=True, help="repeatable")
    parser.add_argument("--threshold", type=int, default=1, help="alert at this many lines")
    parser.add_argument("--tail", type=int, default=1 << 20, help="bytes from the end")
    parser.add_argument("--follow", type=float, metavar="SECONDS", help="watch new lines")
    parser.add_argument("--json", action="store_true", help="print a JSON result")
    args = parser.parse_args(argv)
    if args.threshold < 1 or args.tail < 1:
        parser.error("--threshold and --tail must be positive")
    try:
        if args.follow is not None:
            counts = follow(args.file, args.pattern, args.threshold, args.follow)
        else:
            counts = count(read_tail(args.file, args.tail), args.pattern)
    except OSError as exc:
        print(f"logwatch: {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    alert = counts.matching >= args.threshold
    if args.json:
        print(json.dumps({"file": args.file, "alert": alert, "threshold": args.threshold,
                          "lines": counts.lines, "matching": counts.matching,
                          "per_pattern": counts.per_pattern}, indent=2))  # fmt: skip
    else:
        word = "ALERT" if alert else "ok"
        detail = ", ".join(f"{p}: {n}" for p, n in counts.per_pattern.items())
        print(f"{word}  {counts.matching} of {counts.lines} lines match ({detail}); "
              f"threshold {args.threshold}")  # fmt: skip
    return 1 if alert else 0


if __name__ == "__main__":
    sys.exit(main())
