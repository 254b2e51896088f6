"""Recipe model, TOML loading and validation.

A recipe (``recipes/<name>/recipe.toml``) names an ops script, its dependencies, the
targets and formats to build, and its hardening policy. Every problem is reported with
the file, the key, the line (where one can be found), what is wrong and a close match.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version

from . import targets as registry
from .checks import model as checks_model
from .checks.model import DEFAULT as DEFAULT_CHECKS
from .checks.model import Check
from .errors import RecipeError, did_you_mean

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?$")
#: A version goes into every artifact's file name: PEP 440's normal form, no epoch.
VERSION_RE = re.compile(r"[0-9][0-9a-z.+]*")
ENTRY_RE = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*$")
PYTHON_RE = re.compile(r"^3\.(1[1-9]|[2-9][0-9])$")
HARDENING_CHECKS = (
    "relro-partial",
    "relro-full",
    "canary",
    "nx",
    "pie",
    "fortify",
    "cet",
    "bti",
    "no-rpath",
    "stripped",
    "codesign",
    "hardened-runtime",
    "glibc",
    "seccomp",
    "wx",
    "stack-clash",
)

RECIPE_KEYS = ("name", "version", "entry", "sources", "native", "requirements", "python")
TOP_KEYS = ("recipe", "targets", "formats", "hardening", "checks")
TARGET_KEYS = ("python",)
HARDENING_KEYS = ("require", "scope", "waivers", "glibc", "seccomp", "seccomp_allow")
SECCOMP_MODES = ("off", "record", "enforce")
SYSCALL_RE = re.compile(r"^[a-z_][a-z0-9_]{0,39}$")
FAMILY_RE = re.compile(r"^AF_[A-Z0-9]{1,20}$")  # an address family socket() may ask for
GLIBC_RE = re.compile(r"^2\.[0-9]{1,2}$")
WAIVER_KEYS = ("path", "checks", "reason", "expires")


@dataclass(frozen=True, kw_only=True)
class TargetSpec:
    name: str
    python: str


@dataclass(frozen=True, kw_only=True)
class Waiver:
    path: str
    checks: tuple[str, ...]
    reason: str
    expires: dt.date


@dataclass(frozen=True, kw_only=True)
class Hardening:
    require: tuple[str, ...]
    scope: str
    waivers: tuple[Waiver, ...]
    glibc: str = ""  # the newest glibc the "glibc" check allows ("": 2.17, the targets')
    seccomp: str = "record"  # off | record | enforce (see buildkit.seccomp)
    seccomp_allow: tuple[str, ...] = ()  # calls the profile allows beyond what checks made


@dataclass(frozen=True, kw_only=True)
class Recipe:
    path: Path
    name: str
    version: str
    entry: str
    sources: tuple[str, ...]
    requirements: tuple[str, ...]
    python: str | None
    targets: tuple[TargetSpec, ...]
    formats: tuple[str, ...]
    hardening: Hardening | None
    format_options: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    native: tuple[str, ...] = ()  # local packages with C extensions, built into wheels
    checks: tuple[Check, ...] = DEFAULT_CHECKS  # run against every artifact before release

    def options(self, fmt: str) -> dict[str, str]:
        """The ``[formats.<fmt>]`` options given in the recipe."""
        return dict(dict(self.format_options).get(fmt, ()))

    @property
    def root(self) -> Path:
        return self.path.parent

    @property
    def entry_module(self) -> str:
        return self.entry.partition(":")[0]

    def target(self, name: str) -> TargetSpec:
        for spec in self.targets:
            if spec.name == name:
                return spec
        raise RecipeError(
            f"{self.path}: target {name!r} is not in [targets]"
            f"{registry.suggest(name, (t.name for t in self.targets))}",
            hint="targets in this recipe: " + ", ".join(t.name for t in self.targets),
        )


def recipe_file(arg: Path) -> Path:
    """``RECIPE`` on the command line: a recipe folder or its recipe.toml."""
    path = arg / "recipe.toml" if arg.is_dir() else arg
    if not path.is_file():
        raise RecipeError(
            f"{arg}: no recipe here", hint="pass a recipe folder or its recipe.toml file"
        )
    return path


class Checker:
    """Walks the parsed TOML and raises a RecipeError with file, key and line."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()

    def fail(self, key: str, problem: str, hint: str | None = None) -> RecipeError:
        line = self._line_of(key)
        where = f"{self.path}:{line}" if line else str(self.path)
        return RecipeError(f"{where}: {key}: {problem}", hint=hint)

    def _line_of(self, dotted: str) -> int | None:
        """Best-effort line of a key like ``[recipe].entry`` or ``[targets].foo``."""
        table, _, key = dotted.partition("].")
        table = table.lstrip("[").removesuffix("]")
        table, _, index = table.partition("][")  # "[checks][2]": the third [[checks]]
        wanted = int(index) if index.isdigit() else 0
        key = key.split("[")[0].split(".")[0]
        current, seen = "", -1
        for number, raw in enumerate(self.lines, 1):
            line = raw.strip()
            if header := re.match(r"^\[\[?\s*([^\]]+?)\s*\]\]?", line):
                current = header.group(1)
                seen = seen + 1 if current == table else seen
                if not key and current == table and seen == wanted:
                    return number
                continue
            here = current == table and seen == wanted
            if key and here and re.match(rf"^\"?{re.escape(key)}\"?\s*=", line):
                return number
        return None

    def table(self, value: Any, key: str) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a table, not {type_name(value)}")
        return value

    def known(self, table: Mapping[str, Any], allowed: Iterable[str], prefix: str) -> None:
        allowed = tuple(allowed)
        for key in table:
            if key not in allowed:
                raise self.fail(
                    f"{prefix}{key}" if prefix else f"[{key}]",
                    f"unknown key{did_you_mean(key, allowed)}",
                    hint="allowed here: " + ", ".join(allowed),
                )

    def string(self, table: Mapping[str, Any], key: str, where: str, *, required: bool) -> str:
        if key not in table:
            if required:
                raise self.fail(f"{where}{key}", "is required")
            return ""
        value = table[key]
        if not isinstance(value, str):
            raise self.fail(f"{where}{key}", f"must be a string, not {type_name(value)}")
        return value

    def strings(self, table: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(f"{where}{key}", f"must be a list of strings, not {type_name(value)}")
        return tuple(value)


def type_name(value: Any) -> str:
    return {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "a boolean",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)


# Each format's option keys and their allowed values; MODULES marks an option that takes a
# list of Python module names (kept as one comma-separated string).
FormatOptions = Mapping[str, Mapping[str, tuple[str, ...]]]
MODULES: tuple[str, ...] = ()
PATHS: tuple[str, ...] = ("<relative folder paths>",)  # a list of folders inside packages
PATH_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$")
MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def load(arg: Path, *, formats: FormatOptions, targets: Iterable[str]) -> Recipe:
    """Read and validate a recipe.

    ``formats`` maps each known format to its options and their allowed values;
    ``targets`` are the known target names.
    """
    path = recipe_file(arg)
    text, doc = _read_toml(path)
    return parse(path, text, doc, formats=formats, targets=tuple(targets))


def _read_toml(path: Path) -> tuple[str, dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"line (\d+)", str(exc))
        where = f"{path}:{line.group(1)}" if line else str(path)
        raise RecipeError(
            f"{where}: malformed TOML: {exc}", hint="fix the TOML syntax at that line"
        ) from None


def load_policy(path: Path) -> Hardening:
    """A hardening policy file: a TOML file with a ``[hardening]`` table, or a recipe."""
    if not path.is_file():
        raise RecipeError(f"{path}: no such policy file")
    text, doc = _read_toml(path)
    c = Checker(path, text)
    if "hardening" not in doc:
        raise c.fail(
            "[hardening]",
            "no [hardening] table",
            hint='write e.g. [hardening] require = ["relro-full", "canary", "nx", "pie"]',
        )
    c.known(doc, TOP_KEYS, "")
    return _hardening(c, doc["hardening"])


def parse(
    path: Path,
    text: str,
    doc: dict[str, Any],
    *,
    formats: FormatOptions,
    targets: tuple[str, ...],
) -> Recipe:
    c = Checker(path, text)
    c.known(doc, TOP_KEYS, "")
    if "recipe" not in doc:
        raise c.fail("[recipe]", "the [recipe] table is required")
    rec = c.table(doc["recipe"], "[recipe]")
    c.known(rec, RECIPE_KEYS, "[recipe].")

    name = c.string(rec, "name", "[recipe].", required=True)
    if not NAME_RE.fullmatch(name):
        raise c.fail(
            "[recipe].name",
            f"{name!r} is not a valid name",
            "use a-z, 0-9, '.', '_', '-', starting and ending with a letter or digit",
        )
    version = c.string(rec, "version", "[recipe].", required=True)
    try:
        normal = str(Version(version))
    except InvalidVersion:
        normal = None
    if normal is None or normal != version or not VERSION_RE.fullmatch(version):
        raise c.fail(
            "[recipe].version",
            f"{version!r} is not a PEP 440 version in its normal form",
            f"write it as {normal!r}"
            if normal and VERSION_RE.fullmatch(normal)
            else "use digits and dots, with a pre-, post- or dev-release suffix if needed: "
            "'1.0.0', '2.1rc1'",
        )
    entry = c.string(rec, "entry", "[recipe].", required=True)
    if not ENTRY_RE.fullmatch(entry):
        raise c.fail("[recipe].entry", f"{entry!r} is not of the form module:function")
    python = c.string(rec, "python", "[recipe].", required=False) or None
    if python is not None and not PYTHON_RE.fullmatch(python):
        raise c.fail("[recipe].python", f"{python!r} is not a Python version X.Y (3.11 or newer)")

    sources = c.strings(rec, "sources", "[recipe].")
    for src in sources:
        resolved = (path.parent / src).resolve()
        if not resolved.is_relative_to(path.parent.resolve()):
            raise c.fail("[recipe].sources", f"{src!r} points outside the recipe folder")
        if not resolved.is_dir():
            raise c.fail("[recipe].sources", f"{src!r} is not a folder in {path.parent}")
    native = c.strings(rec, "native", "[recipe].")
    for pkg in native:
        resolved = (path.parent / pkg).resolve()
        if not resolved.is_relative_to(path.parent.resolve()):
            raise c.fail("[recipe].native", f"{pkg!r} points outside the recipe folder")
        if not (resolved / "pyproject.toml").is_file():
            raise c.fail(
                "[recipe].native",
                f"{pkg!r} is not a package folder (no pyproject.toml in {resolved})",
                hint="each entry is a folder holding a Python package with a C extension",
            )
    requirements = c.strings(rec, "requirements", "[recipe].")
    for req in requirements:
        try:
            Requirement(req)
        except InvalidRequirement as exc:
            raise c.fail(
                "[recipe].requirements", f"{req!r} is not a PEP 508 requirement: {exc}"
            ) from None
    if sources:
        _check_entry_module(c, path.parent, sources, entry)

    target_specs = _targets(c, doc.get("targets"), targets, python)
    format_names, format_options = _formats(c, doc.get("formats"), formats)
    hardening = _hardening(c, doc["hardening"]) if "hardening" in doc else None
    checks = checks_model.parse(c, doc["checks"]) if "checks" in doc else DEFAULT_CHECKS
    return Recipe(
        path=path,
        name=name,
        version=version,
        entry=entry,
        sources=sources,
        requirements=requirements,
        python=python,
        targets=target_specs,
        formats=format_names,
        hardening=hardening,
        format_options=format_options,
        native=native,
        checks=checks,
    )


def _check_entry_module(c: Checker, root: Path, sources: tuple[str, ...], entry: str) -> None:
    module = entry.partition(":")[0]
    rel = Path(*module.split("."))
    for src in sources:
        base = root / src
        if (base / rel).with_suffix(".py").is_file() or (base / rel / "__init__.py").is_file():
            return
    raise c.fail(
        "[recipe].entry",
        f"module {module!r} is not in the sources ({', '.join(sources)})",
        hint=f"expected {rel}.py or {rel}/__init__.py under one of the sources folders",
    )


def _targets(
    c: Checker, value: Any, known: tuple[str, ...], python: str | None
) -> tuple[TargetSpec, ...]:
    if value is None:
        value = {name: {} for name in known}
    table = c.table(value, "[targets]")
    if not table:
        raise c.fail("[targets]", "lists no target", hint="targets: " + ", ".join(known))
    specs = []
    for name, raw in table.items():
        if name not in known:
            raise c.fail(
                f"[targets].{name}",
                f"unknown target{registry.suggest(name, known)}",
                hint="targets: " + ", ".join(known),
            )
        opts = c.table(raw, f"[targets].{name}")
        c.known(opts, TARGET_KEYS, f"[targets].{name}.")
        py = c.string(opts, "python", f"[targets].{name}.", required=False)
        if py and not PYTHON_RE.fullmatch(py):
            raise c.fail(f"[targets].{name}.python", f"{py!r} is not a Python version X.Y")
        default = registry.get(name).python
        if not py and python and python != default:
            log.warning(
                "%s: [recipe].python = %r also applies to %s, whose own default is %s; "
                "set [targets].%s.python to say which you mean",
                c.path,
                python,
                name,
                default,
                name,
            )
        specs.append(TargetSpec(name=name, python=py or python or default))
    return tuple(specs)


def _formats(
    c: Checker, value: Any, known: FormatOptions
) -> tuple[tuple[str, ...], tuple[tuple[str, tuple[tuple[str, str], ...]], ...]]:
    names = tuple(known)
    if value is None:
        return names, ()
    table = c.table(value, "[formats]")
    if not table:
        raise c.fail("[formats]", "lists no format", hint="formats: " + ", ".join(names))
    options = []
    for name, raw in table.items():
        if name not in known:
            raise c.fail(
                f"[formats].{name}",
                f"unknown format{did_you_mean(name, names)}",
                hint="formats: " + ", ".join(names),
            )
        opts = c.table(raw, f"[formats].{name}")
        allowed = known[name]
        c.known(opts, tuple(allowed), f"[formats].{name}.")
        chosen = []
        for key in opts:
            if allowed[key] == MODULES:
                chosen.append((key, _modules(c, opts, key, f"[formats].{name}.")))
                continue
            if allowed[key] == PATHS:
                chosen.append((key, _paths(c, opts, key, f"[formats].{name}.")))
                continue
            val = c.string(opts, key, f"[formats].{name}.", required=True)
            if val not in allowed[key]:
                raise c.fail(
                    f"[formats].{name}.{key}",
                    f"{val!r} is not one of {', '.join(allowed[key])}"
                    f"{did_you_mean(val, allowed[key])}",
                )
            chosen.append((key, val))
        options.append((name, tuple(chosen)))
    return tuple(table), tuple(options)


def _modules(c: Checker, opts: Mapping[str, Any], key: str, where: str) -> str:
    names = c.strings(opts, key, where)
    for i, module in enumerate(names):
        if not MODULE_RE.fullmatch(module):
            raise c.fail(
                f"{where}{key}[{i}]",
                f"{module!r} is not a Python module name",
                hint='write dotted module names such as "xml" or "concurrent.futures.process"',
            )
    return ",".join(dict.fromkeys(names))


def _paths(c: Checker, opts: Mapping[str, Any], key: str, where: str) -> str:
    names = c.strings(opts, key, where)
    for i, path in enumerate(names):
        if not PATH_RE.fullmatch(path) or ".." in path.split("/"):
            raise c.fail(
                f"{where}{key}[{i}]",
                f"{path!r} is not a relative folder path inside a package",
                hint='write paths such as "glances/plugins", relative to where the package is',
            )
    return ",".join(dict.fromkeys(names))


def _hardening(c: Checker, value: Any) -> Hardening:
    table = c.table(value, "[hardening]")
    c.known(table, HARDENING_KEYS, "[hardening].")
    require = c.strings(table, "require", "[hardening].")
    for check in require:
        if check not in HARDENING_CHECKS:
            raise c.fail(
                "[hardening].require",
                f"unknown check {check!r}{did_you_mean(check, HARDENING_CHECKS)}",
                hint="checks: " + ", ".join(HARDENING_CHECKS),
            )
    scope = c.string(table, "scope", "[hardening].", required=False) or "own"
    if scope not in ("own", "all"):
        raise c.fail("[hardening].scope", f"must be 'own' or 'all', not {scope!r}")
    glibc = c.string(table, "glibc", "[hardening].", required=False) or ""
    if glibc and not GLIBC_RE.match(glibc):
        raise c.fail(
            "[hardening].glibc",
            f'must be a glibc version such as "2.28", not {glibc!r}',
            hint="the oldest glibc your hosts have: RHEL 8 2.28, Ubuntu 20.04 2.31",
        )
    raw = table.get("waivers", [])
    if not isinstance(raw, list):
        raise c.fail("[hardening].waivers", f"must be an array of tables, not {type_name(raw)}")
    waivers = []
    for i, item in enumerate(raw):
        where = f"[hardening].waivers[{i}]."
        w = c.table(item, where.rstrip("."))
        c.known(w, WAIVER_KEYS, where)
        expires = w.get("expires")
        if not isinstance(expires, dt.date) or isinstance(expires, dt.datetime):
            raise c.fail(f"{where}expires", "must be a date (YYYY-MM-DD)")
        waivers.append(
            Waiver(
                path=c.string(w, "path", where, required=True),
                checks=c.strings(w, "checks", where),
                reason=c.string(w, "reason", where, required=True),
                expires=expires,
            )
        )
    seccomp = c.string(table, "seccomp", "[hardening].", required=False) or "record"
    if seccomp not in SECCOMP_MODES:
        raise c.fail(
            "[hardening].seccomp",
            f"must be one of {', '.join(SECCOMP_MODES)}, not {seccomp!r}"
            f"{did_you_mean(seccomp, SECCOMP_MODES)}",
        )
    allow = c.strings(table, "seccomp_allow", "[hardening].")
    for call in allow:
        if not SYSCALL_RE.match(call) and not FAMILY_RE.match(call):
            raise c.fail(
                "[hardening].seccomp_allow",
                f"{call!r} is not a system call name nor an address family",
                hint='write names as strace shows them, e.g. ["fork", "ptrace", "AF_INET6"]',
            )
    return Hardening(
        require=require,
        scope=scope,
        waivers=tuple(waivers),
        glibc=glibc,
        seccomp=seccomp,
        seccomp_allow=allow,
    )
