"""Backends turn one build job into one artifact. One Protocol, a registry by name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..cache import Cache
from ..recipe import Hardening
from ..targets import Target
from ..wheelhouse import Wheel
from .parity import Proof


@dataclass(frozen=True, kw_only=True)
class BuildJob:
    """Everything a backend needs; it reads nothing else."""

    name: str  # the artifact's file name
    entry: str
    target: Target
    python: str
    lockfile: Path
    wheels: tuple[Wheel, ...]
    app_dir: Path  # the recipe's sources, merged, plus the build info file
    settings: Mapping[str, str]  # as returned by Backend.settings (recorded in build info)
    info_digest: str  # sha256 of the build info: every input that decides the output
    cache: Cache
    #: a zipapp's program filter, zipapp_seccomp.ProgramFilter.encode() (settings["seccomp"]
    #: == "boot"; empty in the first build, which only marks where the program starts)
    seccomp_filter: str = ""


@dataclass(frozen=True, kw_only=True)
class Output:
    artifact: Path
    payload: Path | None = None  # folder of the files packed inside (native binaries)
    parity: Proof | None = None  # what the parity proof showed (native binaries)


class Backend(Protocol):
    name: str
    options: Mapping[str, tuple[str, ...]]  # recipe [formats.<name>] keys and their values

    def suffix(self, options: Mapping[str, str]) -> str:
        """Appended to ``<recipe>-<version>-<target>`` to name the artifact."""

    def refusal(self, target: Target, python: str) -> str | None:
        """Why this host cannot build ``target`` for ``python`` (None: it can)."""

    def tool_versions(self, target: Target) -> dict[str, str]:
        """Versions of the tools whose output ends up in the artifact."""

    def settings(
        self, target: Target, options: Mapping[str, str], hardening: Hardening | None
    ) -> dict[str, str]:
        """The settings that decide the output (recorded in the build info)."""

    def build(self, job: BuildJob, work: Path) -> Output:
        """Build the artifact inside ``work``."""


def registry() -> dict[str, Backend]:
    from .nuitka import NuitkaBackend
    from .pex import PexBackend
    from .shiv import ShivBackend

    backends: list[Backend] = [PexBackend(), ShivBackend(), NuitkaBackend()]
    return {b.name: b for b in backends}


def format_options() -> dict[str, Mapping[str, tuple[str, ...]]]:
    return {name: b.options for name, b in registry().items()}


def wheel_dir(job: BuildJob, work: Path) -> Path:
    """A folder holding exactly the job's verified wheels (links into the cache)."""
    return link_wheels(job.wheels, work / "wheels")


def link_wheels(wheels: Sequence[Wheel], folder: Path) -> Path:
    """``folder``, made to hold exactly ``wheels`` (links into the cache)."""
    folder.mkdir()
    for wheel in wheels:
        dest = folder / wheel.filename
        try:
            dest.hardlink_to(wheel.path)
        except OSError:
            dest.symlink_to(wheel.path)
    return folder


class ZipappBackend:
    """What pex and shiv share: any target, no options; one setting, ``seccomp = "boot"``
    when the recipe enforces seccomp on a Linux target (the boot module installs the
    program filter)."""

    name: str
    options: Mapping[str, tuple[str, ...]] = {}
    file_suffix: str

    def suffix(self, options: Mapping[str, str]) -> str:
        return self.file_suffix

    def refusal(self, target: Target, python: str) -> str | None:
        return None

    def settings(
        self, target: Target, options: Mapping[str, str], hardening: Hardening | None
    ) -> dict[str, str]:
        enforce = hardening is not None and hardening.seccomp == "enforce"
        return {"seccomp": "boot"} if enforce and target.os == "linux" else {}
