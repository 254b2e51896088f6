"""A Nuitka user plugin: drop debug sections from the shared libraries of the dist folder
before Nuitka packs it into a onefile binary.

Some build Pythons (pyenv's among them) ship an unstripped libpython of ~23 MB. A onefile
binary checks every extracted file against the payload at each start, so every megabyte
costs start-up time. Only ELF files are touched (``strip -S`` keeps symbol tables needed
for dynamic linking); Mach-O files keep their code signatures untouched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nuitka.plugins.PluginBase import NuitkaPluginBase

from buildkit import tools


class BuildkitStrip(NuitkaPluginBase):  # type: ignore[misc]
    plugin_name = "buildkit-strip"
    plugin_desc = "Strip debug sections from ELF shared libraries before onefile packing."

    @staticmethod
    def isAlwaysEnabled() -> bool:
        return True

    def onStandaloneDistributionFinished(self, dist_dir: str, **_: Any) -> None:
        for path in sorted(Path(dist_dir).rglob("*")):
            if ".so" not in path.name or path.is_symlink() or not path.is_file():
                continue
            with path.open("rb") as f:
                if f.read(4) != b"\x7fELF":
                    continue
            tools.run(["strip", "-S", path], what=f"stripping debug sections from {path.name}")
