"""healthcheck URL... -- HTTP health checks over one reused connection pool.

Each URL is fetched (GET) with a timeout and a bounded number of retries; it is healthy
when the status is one of --expect (default 200) and, with --contains, the body holds that
text. Exit 0 when all are healthy, 1 otherwise, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass

import urllib3


@dataclass(frozen=True)
class Check:
    url: str
    healthy: bool
    status: int | None
    millis: float
    error: str = ""


def check(pool: urllib3.PoolManager, url: str, expect: set[int], contains: str | None) -> Check:
    started = time.perf_counter()
    try:
        resp = pool.request("GET", url, preload_content=True, redirect=False)
    except urllib3.exceptions.HTTPError as exc:
        reason = getattr(exc, "reason", None) or exc
        return Check(url, False, None, _ms(started), str(reason).split(": ", 1)[-1][:200])
    healthy = resp.status in expect
    error = "" if healthy else f"status {resp.status}"
    if healthy and contains is not None and contains not in resp.data.decode(errors="replace"):
        healthy, error = False, f"body does not contain {contains!r}"
    return Check(url, healthy, resp.status, _ms(started), error)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="healthcheck", description=__doc__.split("\n")[0])
    parser.add_argument("urls", nargs="+", metavar="URL")
    parser.add_argument("--expect", type=int, action="append", help="healthy status (repeat)")
    parser.add_argument("--contains", help="text the body must contain")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per request")
    parser.add_argument("--retries", type=int, default=2, help="retries on connection errors")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    args = parser.parse_args(argv)
    for url in args.urls:
        if not url.startswith(("http://", "https://")):
            parser.error(f"{url!r} is not an http:// or https:// URL")

    retries = urllib3.Retry(total=args.retries, backoff_factor=0.1, redirect=False, status=0)
    pool = urllib3.PoolManager(
        num_pools=8, maxsize=4, timeout=urllib3.Timeout(total=args.timeout), retries=retries
    )
    results = [check(pool, url, set(args.expect or [200]), args.contains) for url in args.urls]
    pool.clear()

    if args.json:
        json.dump([asdict(r) for r in results], sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for r in results:
            state = "healthy" if r.healthy else "UNHEALTHY"
            detail = f"{r.status} in {r.millis} ms" if r.healthy else r.error
            print(f"{state:<10}{r.url}  {detail}")
    return 0 if all(r.healthy for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
