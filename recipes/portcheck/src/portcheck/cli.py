"""portcheck HOST:PORT... -- probe TCP ports concurrently, each with a timeout.

Prints one line per port (open/closed, time or reason); exit 0 when every port is open,
1 when any is closed or unreachable, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Probe:
    host: str
    port: int
    open: bool
    millis: float
    error: str = ""


def parse_target(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT (port 1-65535)")
    return host.strip("[]"), int(port)


def probe(host: str, port: int, timeout: float) -> Probe:
    started = time.perf_counter()
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except TimeoutError:
        return Probe(host, port, False, _ms(started), f"no answer within {timeout:g} s")
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        return Probe(host, port, False, _ms(started), reason.lower())
    return Probe(host, port, True, _ms(started))


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="portcheck", description=__doc__.split("\n")[0])
    parser.add_argument("targets", nargs="+", type=parse_target, metavar="HOST:PORT")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds per port")
    parser.add_argument("--workers", type=int, default=32, help="ports probed at once")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    args = parser.parse_args(argv)

    with ThreadPoolExecutor(max_workers=max(1, args.workers)) as pool:
        results = list(pool.map(lambda t: probe(t[0], t[1], args.timeout), args.targets))

    if args.json:
        json.dump([asdict(r) for r in results], sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for r in results:
            state = "open" if r.open else "closed"
            detail = f"{r.millis} ms" if r.open else r.error
            print(f"{state:<7}{r.host}:{r.port}  {detail}")
    return 0 if all(r.open for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
