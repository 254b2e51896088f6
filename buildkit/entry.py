"""The recipe's entry point, checked before anything is built.

``entry = "module:attr[.attr]"`` is called as a console script would call it. A typo
(``clidriver:mian``) would otherwise build green and fail at the first start, so the
module is looked up in the recipe's sources and the locked wheels (already verified by
hash), read without importing anything, and the attribute looked for among the names
the module defines at its top level (functions, classes, assignments, imports; for
``Class.method``, the class body). A module that makes names at run time (``from x
import *``, a module ``__getattr__``, ``globals()``) cannot be judged this way and is
left to the recipe's checks.
"""

from __future__ import annotations

import ast
import logging
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from .errors import did_you_mean
from .recipe import Checker, Recipe
from .wheelhouse import Wheel

log = logging.getLogger(__name__)

MAX_MODULE = 8 << 20  # bytes of one module's source read from a wheel
_DYNAMIC = ("globals()", "exec(", "sys.modules[", "setattr(")


def _candidates(module: str) -> tuple[str, str]:
    rel = module.replace(".", "/")
    return f"{rel}.py", f"{rel}/__init__.py"


def find_source(recipe: Recipe, wheels: Iterable[Wheel]) -> tuple[str, str] | None:
    """(where it was found, its source text) of the entry's module, or None."""
    names = _candidates(recipe.entry_module)
    for src in recipe.sources:
        for name in names:
            path = recipe.root / src / name
            if path.is_file():
                return f"{Path(src) / name}", path.read_text(encoding="utf-8", errors="replace")
    for wheel in wheels:
        with zipfile.ZipFile(wheel.path) as zf:
            members = {i.filename: i for i in zf.infolist()}
            for name in names:
                info = members.get(name)
                if info is not None and info.file_size <= MAX_MODULE:
                    text = zf.read(info).decode("utf-8", errors="replace")
                    return f"{name} in {wheel.filename}", text
    return None


def _names(body: Sequence[ast.stmt]) -> tuple[set[str], bool]:
    """Names a block defines at its own level, and whether it may make others at run time."""
    names: set[str] = set()
    dynamic = False
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            dynamic |= node.name == "__getattr__"
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name == "*":
                    dynamic = True
                names.add(alias.asname or alias.name.split(".")[0])
        else:  # if / try / with / for blocks at the top level define names too
            for field in ("body", "orelse", "finalbody", "handlers"):
                inner = getattr(node, field, None)
                if isinstance(inner, list):
                    blocks = [h.body for h in inner] if field == "handlers" else [inner]
                    for block in blocks:
                        more, maybe = _names(block)
                        names |= more
                        dynamic |= maybe
            if isinstance(node, ast.Match):
                for case in node.cases:
                    more, maybe = _names(case.body)
                    names |= more
                    dynamic |= maybe
    return names, dynamic


def check(recipe: Recipe, wheels: Iterable[Wheel]) -> None:
    """Raise RecipeError (exit 2) when the entry's module or attribute does not exist."""
    module, _, attrs = recipe.entry.partition(":")
    path = recipe.path
    found = find_source(recipe, wheels)
    checker = Checker(path, path.read_text(encoding="utf-8"))
    if found is None:
        raise checker.fail(
            "[recipe].entry",
            f"{recipe.entry!r}: module {module!r} is in neither the recipe's sources nor the "
            "locked wheels",
            hint="check the spelling, or add the package that holds it to requirements "
            "(then run `buildkit lock`)",
        )
    where, text = found
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        log.warning("cannot read %s to check the entry point: %s", where, exc)
        return
    body: Sequence[ast.stmt] = tree.body
    owner = module
    for attr in attrs.split("."):
        names, dynamic = _names(body)
        if dynamic or any(marker in text for marker in _DYNAMIC):
            log.debug("%s makes names at run time; entry %s left to the checks", where, attr)
            return
        if attr not in names:
            public = sorted(n for n in names if not n.startswith("_"))
            functions = [
                n.name
                for n in body
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                and not n.name.startswith("_")
            ]
            raise checker.fail(
                "[recipe].entry",
                f"{recipe.entry!r}: {owner} ({where}) has no {attr!r}{did_you_mean(attr, public)}",
                hint="name a function it defines: " + ", ".join((functions or public)[:12]),
            )
        classes = [n for n in body if isinstance(n, ast.ClassDef) and n.name == attr]
        if not classes:
            return  # a function or another object: what it holds is not known statically
        body, owner = classes[0].body, f"{owner}.{attr}"
