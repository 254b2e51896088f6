"""`buildkit run-on HOST ARTIFACT -- ARGS`: run an artifact on an emulated host."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from .. import buildinfo
from ..cache import Cache
from ..errors import BuildkitError, InputError
from . import get
from .store import run_in, use

INSIDE = "/opt/buildkit-run"


def run_on(
    name: str,
    artifact: Path,
    args: Sequence[str],
    cache: Cache,
    *,
    env: Mapping[str, str] | None = None,
) -> int:
    """Run ``artifact ARGS`` inside the host (stdio passed through); its exit code."""
    spec = get(name)
    if not artifact.is_file():
        raise InputError(f"{artifact}: no such file", hint="give the path of an artifact file")
    if artifact.name.endswith(".tar.gz"):
        raise InputError(
            f"{artifact}: a standalone folder archive cannot run as it is",
            hint="unpack it and run the program inside, or give a onefile binary, .pex or .pyz",
        )
    if not os.access(artifact, os.X_OK):
        raise InputError(f"{artifact} is not executable", hint=f"chmod +x {artifact}")
    try:
        built_for = buildinfo.read(artifact).get("target")
    except BuildkitError:
        built_for = None  # not a buildkit artifact: run it as any program
    if built_for is not None and built_for != spec.target:
        raise InputError(
            f"{artifact.name} was built for {built_for}; the host {name} runs "
            f"{spec.target} artifacts",
            hint=f"run it on the {built_for} host, or build it for {spec.target}",
        )
    host = use(spec, cache)
    inside = f"{INSIDE}/{artifact.name}"
    proc = run_in(
        host,
        [inside, *args],
        binds=[(artifact.resolve(), inside, True)],
        env=env,
    )
    return proc.returncode
