"""A Nuitka user plugin: ship the modules buildkit names as bytecode instead of C.

A binary holds every module of the lock (parity), but compiling all of them to C is what
made a real CLI take most of an hour: only the recipe's own code and the modules its
checks saw run gain from it. buildkit writes the names of the others, one per line, to
the file named by ``BUILDKIT_NUITKA_BYTECODE``; Nuitka packs those as marshalled code
objects in the same binary (its own "bytecode" mode, which it already uses for the
standard library). Every other module is left to Nuitka's own choice.
"""

from __future__ import annotations

import os
from pathlib import Path

from nuitka.plugins.PluginBase import NuitkaPluginBase


class BuildkitCompile(NuitkaPluginBase):  # type: ignore[misc]
    plugin_name = "buildkit-compile"
    plugin_desc = "Ship the modules buildkit lists as bytecode rather than compiled C."

    def __init__(self) -> None:
        listed = os.environ.get("BUILDKIT_NUITKA_BYTECODE", "")
        names = Path(listed).read_text(encoding="utf-8").split() if listed else []
        self.bytecode = frozenset(names)

    @staticmethod
    def isAlwaysEnabled() -> bool:
        return True

    def decideCompilation(self, module_name: object) -> str | None:
        return "bytecode" if str(module_name) in self.bytecode else None
