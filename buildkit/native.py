"""A recipe's native packages (``[recipe] native``): local packages with C extensions.

For the host's own target (and the Python running buildkit) buildkit compiles each one
into a wheel itself, with the recipe's hardening flags for shared objects and without
debug information (which would record the build folder), so the wheel is reproducible; on Linux
auditwheel names the oldest manylinux policy the extension is consistent with, and the
wheel is tagged with it (or refused when the target does not accept it). A wheel in
``--wheelhouse DIR`` (cibuildwheel's output, see :mod:`buildkit.cibw`) is used instead
when it has one for the target; for targets this host cannot compile for it is the only
source, and without one the target is refused, naming what to do. Either
way the wheel is recorded with its sha256 like every other, and the audit counts its
native files as our own code.
"""

from __future__ import annotations

import re
import shutil
import sys
import sysconfig
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import (
    InvalidWheelFilename,
    canonicalize_name,
    parse_wheel_filename,
)

from . import hardening, tools
from .errors import InputError, ToolError
from .fsutil import sha256_file
from .recipe import Hardening, Recipe
from .targets import Target
from .wheelhouse import Wheel

_IGNORE = shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__", ".*")
_POLICY = re.compile(r'consistent with the\s+following platform tag:\s+"([^"]+)"')


@dataclass(frozen=True, kw_only=True)
class NativePackage:
    folder: Path
    name: str  # canonical project name
    version: str


def packages(recipe: Recipe) -> list[NativePackage]:
    out = []
    for rel in recipe.native:
        folder = recipe.root / rel
        pyproject = folder / "pyproject.toml"
        try:
            project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise InputError(f"{pyproject}: unreadable: {exc}") from None
        name, version = project.get("name"), project.get("version")
        if not isinstance(name, str) or not isinstance(version, str):
            raise InputError(
                f"{pyproject}: [project] needs a static name and version",
                hint="buildkit names the wheel before building it; write both in pyproject.toml",
            )
        out.append(NativePackage(folder=folder, name=canonicalize_name(name), version=version))
    return out


def builds_here(target: Target, python: str) -> bool:
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    return target.is_host() and python == version


def from_wheelhouse(
    pkg: NativePackage, target: Target, python: str, wheelhouse: Path | None
) -> Path | None:
    """The best wheel of ``pkg`` in ``wheelhouse`` that ``target`` accepts, if any."""
    if wheelhouse is None:
        return None
    ranks = {str(t): i for i, t in enumerate(target.wheel_tags(python))}
    best: tuple[int, Path] | None = None
    for path in sorted(wheelhouse.glob("*.whl")):
        try:
            name, version, _, tags = parse_wheel_filename(path.name)
        except InvalidWheelFilename:
            continue
        if name != pkg.name or str(version) != pkg.version:
            continue
        rank = min((ranks[str(t)] for t in tags if str(t) in ranks), default=None)
        if rank is not None and (best is None or rank < best[0]):
            best = (rank, path)
    return best[1] if best else None


def unavailable(recipe: Recipe, target: Target, python: str, wheelhouse: Path | None) -> str | None:
    """Why this target cannot have the recipe's native packages (None: it can)."""
    for pkg in packages(recipe):
        if builds_here(target, python) or from_wheelhouse(pkg, target, python, wheelhouse):
            continue
        ident = f"cp{python.replace('.', '')}-{target.cibw_platform_tag}"
        where = f"in {wheelhouse}" if wheelhouse else "without --wheelhouse"
        return (
            f"{pkg.name} {pkg.version} has a C extension and no wheel for {target.name} "
            f"{where}: build it with cibuildwheel (identifier {ident}; "
            f"`buildkit cibuildwheel-config {recipe.root}`) and pass --wheelhouse DIR, "
            f"or build on {target.native_builder}"
        )
    return None


def wheels(
    recipe: Recipe,
    target: Target,
    python: str,
    work: Path,
    wheelhouse: Path | None,
) -> tuple[Wheel, ...]:
    """The wheels of the recipe's native packages for ``target`` (built or found)."""
    out = []
    for pkg in packages(recipe):
        found = from_wheelhouse(pkg, target, python, wheelhouse)
        if found is not None:  # asked for: cibuildwheel's, built in a manylinux container
            path = found
        elif builds_here(target, python):
            path = _compile(pkg, target, recipe.hardening, work)
        else:  # plan() refused this target already
            raise InputError(unavailable(recipe, target, python, wheelhouse) or pkg.name)
        out.append(
            Wheel(
                name=pkg.name,
                version=pkg.version,
                filename=path.name,
                sha256=sha256_file(path),
                path=path,
            )
        )
    return tuple(out)


def _compile(pkg: NativePackage, target: Target, policy: Hardening | None, work: Path) -> Path:
    src = work / "native" / pkg.folder.name
    shutil.copytree(pkg.folder, src, ignore=_IGNORE)
    raw, final = work / "native-raw", work / "native-wheels"
    flags = hardening.flags_for(policy, target.arch, target.os, shared=True)
    # A CFLAGS of our own replaces the interpreter's, optimisation included, which
    # _FORTIFY_SOURCE needs. No debug information and no asserts: nothing records the
    # build folder, so the wheel does not depend on where it was built (and a folder with
    # a space in its name cannot break the flags).
    cflags = ["-O2", "-g0", "-DNDEBUG", *flags.cflags]
    env = {"CFLAGS": " ".join(cflags), "LDFLAGS": " ".join(flags.ldflags), **dict(target.uv_env)}
    if target.os == "linux":
        # the interpreter's LDSHARED may carry its own -rpath (pyenv's does)
        env["LDSHARED"] = f"{sysconfig.get_config_var('CC') or 'cc'} -shared"
    tools.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "--wheel-dir", raw, src],
        what=f"compiling {pkg.name} for {target.name}",
        cwd=src,
        env=env,
    )  # fmt: skip
    (wheel,) = raw.glob(f"{pkg.name.replace('-', '_')}-*.whl")
    if target.os == "linux":
        wheel = _manylinux(wheel, target)
    final.mkdir(exist_ok=True)
    return Path(shutil.move(wheel, final / wheel.name))


def _manylinux(wheel: Path, target: Target) -> Path:
    """Tag a wheel built here with the manylinux policy auditwheel finds it consistent
    with, if the target accepts that policy."""
    auditwheel = tools.find_tool("auditwheel")
    show = tools.run([auditwheel, "show", wheel], what=f"auditwheel show {wheel.name}")
    m = _POLICY.search(" ".join((show.stdout + show.stderr).split()))
    if m is None or m.group(1) not in target.platform_tags:
        found = m.group(1) if m else "no manylinux policy"
        raise ToolError(
            f"{wheel.name}: its extension is consistent with {found}, which {target.name} "
            f"does not accept ({target.platform_tags[0]} or older)",
            hint="build it with cibuildwheel in a manylinux container and pass --wheelhouse",
        )
    proc = tools.run(
        [sys.executable, "-m", "wheel", "tags", "--platform-tag", m.group(1), "--remove", wheel],
        what=f"tagging {wheel.name} {m.group(1)}",
        cwd=wheel.parent,
    )
    return wheel.parent / proc.stdout.strip().splitlines()[-1]
