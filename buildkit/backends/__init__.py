"""Backends turn one build job into one artifact. One Protocol, a registry by name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..cache import Cache
from ..targets import Target
from ..wheelhouse import Wheel


@dataclass(frozen=True, kw_only=True)
class BuildJob:
    """Everything a backend needs; it reads nothing else."""

    entry: str
    target: Target
    python: str
    lockfile: Path
    wheels: tuple[Wheel, ...]
    app_dir: Path  # the recipe's sources, merged, plus the build info file
    cache: Cache


class Backend(Protocol):
    name: str
    suffix: str  # appended to "<recipe>-<version>-<target>"

    def refusal(self, target: Target) -> str | None:
        """Why this host cannot build ``target`` (None: it can)."""

    def tool_versions(self) -> dict[str, str]:
        """Versions of the tools whose output ends up in the artifact."""

    def build(self, job: BuildJob, work: Path) -> Path:
        """Build the artifact inside ``work`` and return its path."""


def registry() -> dict[str, Backend]:
    from .pex import PexBackend
    from .shiv import ShivBackend

    backends: list[Backend] = [PexBackend(), ShivBackend()]
    return {b.name: b for b in backends}


def wheel_dir(job: BuildJob, work: Path) -> Path:
    """A folder holding exactly the job's verified wheels (links into the cache)."""
    folder = work / "wheels"
    folder.mkdir()
    for wheel in job.wheels:
        dest = folder / wheel.filename
        try:
            dest.hardlink_to(wheel.path)
        except OSError:
            dest.symlink_to(wheel.path)
    return folder
