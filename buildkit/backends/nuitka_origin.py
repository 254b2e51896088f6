"""A Nuitka user plugin: stop the build when a module comes from outside the program.

A binary may hold the recipe's sources, the lock's distributions (the folders buildkit
installed them to) and the standard library of the interpreter it embeds; nothing else
was hashed by the recipe's lock or appears in its SBOM. Nuitka finds modules through the
``sys.path`` of the interpreter running it, which also holds the toolkit (Nuitka, rich,
pygments...): buildkit names those to Nuitka as never followed, and this plugin is the
proof that nothing came in another way. Once Nuitka's module set is final it checks the
file of every module against the folders named by ``BUILDKIT_NUITKA_ROOTS`` and the
interpreter's own standard library (its site-packages excepted), and stops the build
naming the first modules found elsewhere. Nuitka's own glue is not foreign: the main
script under another name (``__parents_main__``, for multiprocessing's children) and the
code its plugins run before or after a module loads (``<module>-preLoad``, part of the
pinned Nuitka, as its C helpers are).
"""

from __future__ import annotations

import os
import sysconfig
from pathlib import Path
from typing import Any

from nuitka.plugins.PluginBase import NuitkaPluginBase
from nuitka.utils.ModuleNames import trigger_names


def _std_roots() -> list[Path]:
    paths = sysconfig.get_paths()
    return sorted({Path(paths["stdlib"]).resolve(), Path(paths["platstdlib"]).resolve()})


class BuildkitOrigin(NuitkaPluginBase):  # type: ignore[misc]
    plugin_name = "buildkit-origin"
    plugin_desc = "Stop when a module comes from outside the program's folders."

    def __init__(self) -> None:
        listed = os.environ.get("BUILDKIT_NUITKA_ROOTS", "")
        self.roots = [Path(p).resolve() for p in listed.split(os.pathsep) if p]
        self.std = _std_roots()

    @staticmethod
    def isAlwaysEnabled() -> bool:
        return True

    def _allowed(self, path: Path) -> bool:
        if any(path.is_relative_to(root) for root in self.roots):
            return True
        for std in self.std:
            if path.is_relative_to(std):
                rest = path.relative_to(std).parts
                return not rest or rest[0] not in ("site-packages", "dist-packages")
        return False

    def onModuleCompleteSet(self, module_set: tuple[Any, ...]) -> None:
        if not self.roots:
            return  # not started by buildkit
        main = {Path(m.getCompileTimeFilename()).resolve() for m in module_set if m.isMainModule()}
        foreign = []
        for module in module_set:
            name = str(module.getFullName())
            if module.isMainModule() or name.endswith(trigger_names):
                continue  # the main script, and code Nuitka's plugins generate
            filename = module.getCompileTimeFilename()
            if not filename:
                continue  # built in, or made by Nuitka itself
            path = Path(filename).resolve()
            if path not in main and not self._allowed(path):
                foreign.append(f"{name} ({path})")
        if foreign:
            shown = ", ".join(sorted(foreign)[:5])
            more = f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
            self.sysexit(
                f"buildkit: {len(foreign)} module(s) from outside the recipe's sources, its "
                f"lock and the interpreter's standard library: {shown}{more}"
            )
