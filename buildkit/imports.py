"""The modules a body of Python code may import, read from its source without running it.

Nuitka follows every import it can see in a module it packs: at the top, inside
functions, under ``try``; and ``__import__``/``importlib.import_module`` called with a
constant name. Before buildkit leaves a standard-library module out of a binary it must
know that nothing packed imports it that way, so this module reads the same statements
and walks them from a set of starting modules to the closure of what they reach.

It reads sources only (``ast``); extension modules and built-in modules are found but
have nothing to read. A file that does not parse (another Python's syntax) adds nothing.
Sources are bounded in size, and the walk in the number of modules.
"""

from __future__ import annotations

import ast
import sys
import sysconfig
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from .errors import InputError

MAX_SOURCE = 16 << 20  # bytes of one module's source
MAX_MODULES = 200_000  # modules one walk may visit
_EXTENSIONS = (".so", ".pyd")


def _prefixes(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _base(node: ast.ImportFrom, name: str, is_package: bool) -> str | None:
    if not node.level:
        return node.module or None
    parts = name.split(".") if is_package else name.split(".")[:-1]
    if node.level - 1 > len(parts) - 1 or not parts:
        return None
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join([*parts, *([node.module] if node.module else [])])


def _constant_name(node: ast.Call) -> str | None:
    func = node.func
    called = (
        func.id
        if isinstance(func, ast.Name)
        else func.attr
        if isinstance(func, ast.Attribute)
        else None
    )
    if called not in ("__import__", "import_module") or not node.args:
        return None
    first = node.args[0]
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        return first.value if not first.value.startswith(".") else None
    return None


def _never_true(test: ast.expr) -> bool:
    """``__name__ == "__main__"`` (false in a module imported by name) and
    ``TYPE_CHECKING``: branches Nuitka folds away and never follows imports in."""
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        sides = [test.left, *test.comparators]
        names = [s.id for s in sides if isinstance(s, ast.Name)]
        values = [s.value for s in sides if isinstance(s, ast.Constant)]
        return isinstance(test.ops[0], ast.Eq) and names == ["__name__"] and values == ["__main__"]
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


_BLOCKS = ("body", "orelse", "finalbody", "handlers", "cases")


def _statements(tree: ast.AST) -> Iterator[ast.AST]:
    """Every statement (imports are statements), except inside the body of a branch that
    is never taken; blocks only, so a walk costs a fraction of ``ast.walk``."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        never = isinstance(node, ast.If) and _never_true(node.test)
        for field in _BLOCKS:
            if never and field == "body":
                continue
            block = getattr(node, field, None)
            if isinstance(block, list):
                todo.extend(block)


def imported_names(source: bytes, name: str, *, is_package: bool) -> set[str]:
    """Every module name ``source`` (the module ``name``) may import, with the packages
    on the way (``import a.b.c`` names ``a``, ``a.b`` and ``a.b.c``); ``from a import
    b`` names ``a`` and the candidate ``a.b`` (a module or just an attribute)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    found: set[str] = set()
    calls = b"__import__" in source or b"import_module" in source
    for node in _statements(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.update(_prefixes(alias.name))
        elif isinstance(node, ast.ImportFrom):
            base = _base(node, name, is_package)
            if base:
                found.update(_prefixes(base))
                found.update(f"{base}.{a.name}" for a in node.names if a.name != "*")
    if calls:  # a constant name given to __import__ or import_module, anywhere
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and (called := _constant_name(node)):
                found.update(_prefixes(called))
    return found


class Finder:
    """Finds a module's file the way the import system would, over ``roots`` in order."""

    def __init__(self, roots: Sequence[Path]) -> None:
        self.roots = tuple(roots)
        self.builtin = frozenset(sys.builtin_module_names)

    def find(self, name: str) -> tuple[Path | None, bool] | None:
        """(its source file or None when it has none to read, is it a package), or None
        when no root has it."""
        if name in self.builtin:
            return None, False
        rel = name.replace(".", "/")
        for root in self.roots:
            folder = root / rel
            if (folder / "__init__.py").is_file():
                return folder / "__init__.py", True
            if (root / f"{rel}.py").is_file():
                return root / f"{rel}.py", False
            parent, leaf = folder.parent, folder.name
            if parent.is_dir():
                for ext in parent.glob(f"{leaf}.*"):
                    if ext.name.endswith(_EXTENSIONS) and ext.name.split(".")[0] == leaf:
                        return None, False
            if folder.is_dir():
                return None, True  # a namespace package: nothing to read
        return None

    def submodules(self, name: str) -> list[str]:
        """The modules directly inside the package ``name``, over every root."""
        found: set[str] = set()
        rel = name.replace(".", "/")
        for root in self.roots:
            folder = root / rel
            if not folder.is_dir():
                continue
            for entry in folder.iterdir():
                leaf = entry.name.split(".")[0]
                if not leaf.isidentifier() or leaf.startswith("__"):
                    continue
                if (
                    entry.suffix == ".py"
                    or entry.name.endswith(_EXTENSIONS)
                    or (entry / "__init__.py").is_file()
                ):
                    found.add(f"{name}.{leaf}")
        return sorted(found)


def closure(start: Iterable[str], finder: Finder) -> set[str]:
    """The modules reachable from ``start`` by the imports their sources show (names that
    no root has are left out: an attribute imported with ``from``, an optional module
    this site does not have)."""
    seen: set[str] = set()
    todo = [n for s in start for n in _prefixes(s)]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        found = finder.find(name)
        if found is None:
            continue
        seen.add(name)
        if len(seen) > MAX_MODULES:
            raise InputError(
                f"more than {MAX_MODULES} modules reachable from the program",
                hint="the installed site is not what the lock names: build again",
            )
        source, is_package = found
        if source is None:
            continue
        with source.open("rb") as f:
            text = f.read(MAX_SOURCE + 1)
        if len(text) > MAX_SOURCE:
            continue  # generated tables, not imports: nothing Nuitka follows either
        todo.extend(n for n in imported_names(text, name, is_package=is_package) if n not in seen)
    return seen


def stdlib_roots() -> list[Path]:
    """Where this interpreter's standard library lives (sources and extension modules)."""
    paths = sysconfig.get_paths()
    stdlib = Path(paths["stdlib"])
    return [stdlib, Path(paths["platstdlib"]) / "lib-dynload", stdlib / "lib-dynload"]
