"""A Nuitka user plugin: pack the package-data files Nuitka's own options leave out.

Nuitka's package-data scan skips files with a code suffix (``.pyi`` stubs, ``.py`` files
no import can name, ``.bin`` data) and ``py.typed`` markers, and its
``--include-data-files`` skips ``py.typed`` too. The pex of the same lock has them, and a
program may read them, so buildkit names them, one ``SOURCE<TAB>DEST`` per line, in the
file named by ``BUILDKIT_NUITKA_DATA``; this plugin adds each as a data file of the
binary, once, with the main module's data.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nuitka.plugins.PluginBase import NuitkaPluginBase


class BuildkitData(NuitkaPluginBase):  # type: ignore[misc]
    plugin_name = "buildkit-data"
    plugin_desc = "Pack the package-data files buildkit lists that Nuitka would skip."

    def __init__(self) -> None:
        listed = os.environ.get("BUILDKIT_NUITKA_DATA", "")
        lines = Path(listed).read_text(encoding="utf-8").splitlines() if listed else []
        self.files = [tuple(line.split("\t", 1)) for line in lines if "\t" in line]

    @staticmethod
    def isAlwaysEnabled() -> bool:
        return True

    def considerDataFiles(self, module: Any) -> Iterator[Any]:
        if module.isMainModule():
            for source, dest in self.files:
                yield self.makeIncludedDataFile(
                    source_path=source, dest_path=dest, reason="in the pex of the same lock"
                )
