"""How the CLI shows library log records: a progress bar on a terminal, plain lines in CI.

Library code only logs. Records that carry ``extra={"progress": (done, total), "step": name}``
advance that step's bar; everything else is a line. ``NO_COLOR`` is honoured (by rich, and here).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


def is_interactive() -> bool:
    return sys.stderr.isatty() and os.environ.get("CI", "") in ("", "0", "false")


class PlainHandler(logging.Handler):
    """One line per record on stderr, e.g. ``buildkit: [3/8] built x.pex (1.2 s)``."""

    def emit(self, record: logging.LogRecord) -> None:
        progress: Any = getattr(record, "progress", None)
        prefix = f"[{progress[0]}/{progress[1]}] " if progress and progress[0] else ""
        level = "" if record.levelno < logging.WARNING else record.levelname.lower() + ": "
        sys.stderr.write(f"buildkit: {level}{prefix}{record.getMessage()}\n")
        sys.stderr.flush()


class RichHandler(logging.Handler):
    """A live progress bar for counted steps, lines above it for the rest."""

    def __init__(self, console: Console) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

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
        self.tasks: dict[str, Any] = {}

    def emit(self, record: logging.LogRecord) -> None:
        progress: Any = getattr(record, "progress", None)
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            self.console.print(f"[yellow]{record.levelname.lower()}:[/] {message}", highlight=False)
        else:
            self.console.print(f"[dim]{message}[/]", highlight=False)
        if progress:
            step, (done, total) = getattr(record, "step", "working"), progress
            if not self.tasks:
                self.progress.start()
            if step not in self.tasks:
                self.tasks[step] = self.progress.add_task(step, total=total)
            self.progress.update(self.tasks[step], completed=done, total=total)
            if done >= total:
                self.progress.remove_task(self.tasks.pop(step))
                if not self.tasks:
                    self.progress.stop()


def _console() -> Console:
    from rich.console import Console

    return Console(stderr=True, no_color=bool(os.environ.get("NO_COLOR")) or None)


def setup_logging(verbose: bool) -> None:
    """Send the library's records to stderr: rich on a terminal, plain lines otherwise."""
    root = logging.getLogger("buildkit")
    root.handlers.clear()
    root.propagate = False
    handler = RichHandler(_console()) if is_interactive() else PlainHandler()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)


def print_error(message: str, hint: str | None) -> None:
    """``buildkit: error: ...`` and an indented hint, in red on a colour terminal."""
    if is_interactive():
        from rich.markup import escape

        console = _console()
        console.print(
            f"[bold red]buildkit: error:[/] {escape(message)}", highlight=False, soft_wrap=True
        )
        if hint:
            console.print(f"  hint: {hint}", highlight=False, markup=False, soft_wrap=True)
        return
    sys.stderr.write(f"buildkit: error: {message}\n")
    if hint:
        sys.stderr.write(f"  hint: {hint}\n")
