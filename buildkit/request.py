"""A `buildkit build` invocation as data: what repro's builds and the emulated builder
run as a command line, built in one place."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, kw_only=True)
class BuildRequest:
    recipe: Path
    out: Path
    targets: tuple[str, ...] = ()
    formats: tuple[str, ...] = ()
    cache_dir: Path | None = None
    lockfiles: Path | None = None
    wheelhouse: Path | None = None
    offline: bool = False
    verbose: bool = False
    json: bool = False

    def to_argv(self, python: str | Path, prefix: Sequence[str] = ()) -> list[str]:
        """The command that runs this build with ``python`` (after ``prefix``, e.g. a
        ``taskset`` or ``unshare`` wrapper)."""
        argv = [*prefix, str(python), "-m", "buildkit", "build", str(self.recipe)]
        argv += ["--out", str(self.out)]
        for target in self.targets:
            argv += ["--target", target]
        for fmt in self.formats:
            argv += ["--format", fmt]
        for flag, path in (
            ("--cache-dir", self.cache_dir),
            ("--lockfiles", self.lockfiles),
            ("--wheelhouse", self.wheelhouse),
        ):
            if path is not None:
                argv += [flag, str(path)]
        for flag, on in (("--offline", self.offline), ("--verbose", self.verbose),
                         ("--json", self.json)):  # fmt: skip
            if on:
                argv.append(flag)
        return argv
