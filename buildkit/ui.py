"""How the CLI shows library log records: a progress bar on a terminal, plain lines in CI.

Library code only logs. Records that carry ``extra={"progress": (done, total)}`` advance
the bar; everything else is a line. ``NO_COLOR`` is honoured (by rich, and here).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def is_interactive() -> bool:
    return sys.stderr.isatty() and os.environ.get("CI", "") in ("", "0", "false")


class PlainHandler(logging.Handler):
    """One line per record on stderr, e.g. ``buildkit: [3/8] built x.pex (1.2 s)``."""

    def emit(self, record: logging.LogRecord) -> None:
        progress: Any = getattr(record, "progress", None)
        prefix = f"[{progress[0]}/{progress[1]}] " if progress else ""
        level = "" if record.levelno < logging.WARNING else record.levelname.lower() + ": "
        sys.stderr.write(f"buildkit: {level}{prefix}{record.getMessage()}\n")
        sys.stderr.flush()


class RichHandler(logging.Handler):
    """A live progress bar for counted steps, lines above it for the rest."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.task: Any = None

    def emit(self, record: logging.LogRecord) -> None:
        progress: Any = getattr(record, "progress", None)
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            self.console.print(f"[yellow]{record.levelname.lower()}:[/] {message}", highlight=False)
        else:
            self.console.print(f"[dim]{message}[/]", highlight=False)
        if progress:
            done, total = progress
            if self.task is None:
                self.progress.start()
                self.task = self.progress.add_task("building", total=total)
            self.progress.update(self.task, completed=done, total=total)
            if done >= total:
                self.progress.stop()
                self.task = None


def setup_logging(verbose: bool) -> Console:
    console = Console(stderr=True, no_color=bool(os.environ.get("NO_COLOR")) or None)
    root = logging.getLogger("buildkit")
    root.handlers.clear()
    root.propagate = False
    handler: logging.Handler = RichHandler(console) if is_interactive() else PlainHandler()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    return console
