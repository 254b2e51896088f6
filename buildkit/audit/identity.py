"""A native file's identity from one release to the next: the artifact's recipe, target
and format without its version, and the member's path with version-bearing folders
(``.deps/psutil-7.0.0-…whl``, a standalone archive's ``name-1.0.0-target/``) reduced to
their project. Baselines compare by it; SARIF fingerprints and run categories use it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import PurePosixPath

from .findings import FileReport

_WHEEL_DIR = re.compile(r"(^|/)\.deps/(?P<name>[^-/]+)-[^/]+\.whl(?=/|$)")


@dataclass(frozen=True, kw_only=True)
class ArtifactName:
    recipe: str
    version: str
    target: str
    suffix: str  # "", ".pex", ".pyz", ".tar.gz"


@cache
def _pattern() -> re.Pattern[str]:
    from ..targets import all_targets

    targets = "|".join(sorted((re.escape(t) for t in all_targets()), key=len, reverse=True))
    return re.compile(
        rf"^(?P<recipe>.+?)-(?P<version>[0-9][^-/]*)-(?P<target>{targets})(?P<suffix>\..+)?$"
    )


def artifact_name(path: str) -> ArtifactName | None:
    """``hostmetrics-1.0.0-linux-amd64.pex`` → recipe, version, target and suffix."""
    m = _pattern().match(PurePosixPath(path).name)
    if m is None:
        return None
    return ArtifactName(
        recipe=m["recipe"], version=m["version"], target=m["target"], suffix=m["suffix"] or ""
    )


def artifact_key(path: str) -> str:
    """The artifact without its version (``hostmetrics-linux-amd64.pex``), else its name."""
    name = artifact_name(path)
    if name is None:
        return PurePosixPath(path).name
    return f"{name.recipe}-{name.target}{name.suffix}"


def member_key(report: FileReport) -> str:
    member = report.member
    name = artifact_name(report.artifact)
    if name is not None:
        member = member.replace(f"{name.recipe}-{name.version}-", f"{name.recipe}-")
    return _WHEEL_DIR.sub(lambda m: f"{m[1]}.deps/{m['name'].lower()}", member)


def identity(report: FileReport) -> str:
    """``hostmetrics-linux-amd64.pex!.deps/psutil/psutil/_psutil_linux.abi3.so``."""
    member = member_key(report)
    key = artifact_key(report.artifact)
    return f"{key}!{member}" if member else key


def category(artifact: str) -> str:
    """The code-scanning category of an artifact's results: recipe and target."""
    name = artifact_name(artifact)
    if name is None:
        return "buildkit/audit/"
    return f"buildkit/{name.recipe}/{name.target}/"
