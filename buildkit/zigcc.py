"""The pinned C compiler (zig, from the ``ziglang`` wheel in the toolkit lock) and the
small helpers the builds that use it share: the toolchain (:mod:`buildkit.toolchain`)
and the musl root (:mod:`buildkit.hosts.musl`)."""

from __future__ import annotations

import os
import shutil
import tarfile
from pathlib import Path

from . import tools
from .errors import ToolError

#: Set by an emulated builder (hosts/builder.py) to the build machine's own zig, mounted
#: inside: the same pinned ziglang wheel, for this machine's architecture (zig is a static
#: executable), so a build under emulation compiles at native speed.
ZIG_ENV = "BUILDKIT_ZIG"


def zig(needed_for: str) -> Path:
    """The zig executable of the installed ziglang wheel (or the one ``$BUILDKIT_ZIG``
    names, inside an emulated builder)."""
    given = os.environ.get(ZIG_ENV)
    if given:
        return Path(given)
    try:
        import ziglang  # type: ignore[import-untyped]
    except ImportError as exc:
        raise ToolError(
            f"ziglang is not installed: it is the C compiler of {needed_for}",
            hint="run ci/setup to install the toolkit's pinned tools",
        ) from exc
    return Path(ziglang.__file__).parent / "zig"


def zig_version() -> str:
    return tools.tool_version("ziglang")


def need_program(name: str, package: str, needed_for: str) -> str:
    """The path of a host program a build needs (make, perl…), or a ToolError naming the
    package to install."""
    found = shutil.which(name)
    if found is None:
        raise ToolError(
            f"{name} is not installed: {needed_for} needs it",
            hint=f"install it: apt-get install {package} (ci/setup does)",
        )
    return found


def unpack_source(archive: Path, dest: Path) -> Path:
    """Unpack a verified source tarball into ``dest`` (tarfile's "data" filter: no links
    out, no devices, no absolute names); return its one top folder."""
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    (top,) = [p for p in dest.iterdir() if p.is_dir()]
    return top
