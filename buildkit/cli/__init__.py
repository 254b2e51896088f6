"""The command line: one module per command, each thin (parse, call the library, render).

Only the command being run is imported: the help texts of all of them are data
(``buildkit/data/commands.toml``), and a command's arguments and its work import what they
use, so ``buildkit --help`` and ``buildkit build --help`` load neither LIEF nor cyclonedx.
Errors are caught here, once.

Exit codes: 0 ok, 1 a check failed (stale lock, verification, policy), 2 bad input or
usage, 3 a tool failed.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from collections.abc import Sequence
from typing import Protocol, cast

from .. import __version__
from ..errors import BuildkitError, Stopped
from ..ui import print_error, setup_logging
from .common import EPILOG, step

#: Command name → module under buildkit.cli, in the order --help lists them.
COMMANDS = {
    "lock": "lock",
    "build": "build",
    "repro": "repro",
    "cibuildwheel-config": "cibuildwheel_config",
    "verify": "verify",
    "release": "release",
    "audit": "audit",
    "inspect": "inspect",
    "host": "host",
    "run-on": "run_on",
    "toolchain": "toolchain",
    "trace": "trace",
}


class Command(Protocol):
    def add_arguments(self, p: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def command(name: str) -> Command:
    return cast(Command, importlib.import_module(f"{__name__}.{COMMANDS[name]}"))


def parser(chosen: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``chosen`` gets its arguments (the others their help line)."""
    p = argparse.ArgumentParser(
        prog="buildkit",
        description="Compile Python ops scripts into reproducible single-file artifacts "
        "(Nuitka native binaries, pex and shiv zipapps) for every target, from hash-pinned "
        "lockfiles, with their hardening audited.",
        epilog=EPILOG,
    )
    p.add_argument("--version", action="version", version=f"buildkit {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        sp = step(sub, name)
        if name == chosen:
            command(name).add_arguments(sp)
    return p


def _parse(words: list[str]) -> argparse.Namespace:
    # run-on and trace pass everything after "--" to the program, options included.
    head, tail = (
        (words[: words.index("--")], words[words.index("--") + 1 :])
        if "--" in words
        else (words, [])
    )
    chosen = next((w for w in head if not w.startswith("-")), None)
    p = parser(chosen if chosen in COMMANDS else None)
    args = p.parse_args(head)
    if args.command in ("run-on", "trace"):
        args.args = [*args.args, *tail]
    elif tail:
        args = p.parse_args(words)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(list(sys.argv[1:] if argv is None else argv))
    setup_logging(args.verbose)
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return command(args.command).run(args)
    except BuildkitError as exc:
        print_error(exc.message, exc.hint)
        return exc.exit_code
    except (Stopped, KeyboardInterrupt) as exc:
        signum = exc.signum if isinstance(exc, Stopped) else signal.SIGINT
        print_error(
            f"stopped by {signal.Signals(signum).name}; nothing half-written was kept "
            "(run the same command again to finish)",
            None,
        )
        return 128 + signum
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stop(signum: int, frame: object) -> None:
    """First SIGTERM/SIGINT: unwind (cleaning up on the way); later ones are ignored so
    the clean-up itself is not cut short."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise Stopped(signum)


if __name__ == "__main__":
    sys.exit(main())
