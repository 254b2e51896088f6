"""One root error type; each subclass carries its exit code and a hint on what to do.

The CLI catches :class:`BuildkitError` once and turns it into a message and an exit code:
0 ok, 1 policy or verification failed, 2 bad input or usage, 3 a tool failed.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class BuildkitError(Exception):
    """Root of every error buildkit reports to its user."""

    exit_code = 3

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class InputError(BuildkitError):
    """Bad input or usage: a recipe, a flag, a target the host cannot serve."""

    exit_code = 2


class RecipeError(InputError):
    """A recipe file is malformed or inconsistent."""


class LockError(InputError):
    """A lock cannot be produced for these inputs (no wheel for a target, engine refused)."""


class OfflineError(InputError):
    """An offline build needs something that is not in the cache."""


class CheckFailed(BuildkitError):
    """A check ran and failed (stale lock, verification, policy gate)."""

    exit_code = 1


class ToolError(BuildkitError):
    """An external tool failed or is missing."""

    exit_code = 3


class NetworkError(ToolError):
    """Something had to be fetched and the registry could not be reached."""


class IntegrityError(BuildkitError):
    """Downloaded or cached bytes do not match their pinned digest."""

    exit_code = 3


class OutputError(BuildkitError):
    """An output could not be written (disk full, permissions)."""

    exit_code = 3


class Stopped(BaseException):
    """SIGTERM or SIGINT arrived. A BaseException (as KeyboardInterrupt is), so no
    ``except Exception`` swallows it: the stack unwinds, every ``finally`` removes its
    temporary files, and the CLI exits with 128 + the signal's number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``; did you mean 'x'?`` for the closest choice, or nothing: for messages about a
    misspelt name."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""
