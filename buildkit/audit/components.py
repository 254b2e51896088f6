"""Where each native file comes from (the component), so a finding reaches whoever can
fix it: our compiled code, the Python interpreter and its stdlib modules, a third-party
wheel (name and version from the archive's dist-info or the build info), or a system
library.
"""

from __future__ import annotations

import functools
import json
import re
import sys
import tarfile
import zipfile
from dataclasses import dataclass, field
from typing import Any

from ..buildinfo import MEMBER
from .findings import Component

_WHEEL_FILE = re.compile(
    r"^(?P<name>[^-/]+)-(?P<version>[^-/]+)(-[^-/]+)?-[^-/]+-[^-/]+-[^/]+\.whl$"
)
_DIST_INFO = re.compile(r"^(?P<name>[^-/]+)-(?P<version>[^-/]+)\.dist-info$")
_SYSTEM_LIB = re.compile(r"^lib[^/]+\.so(\.\d+)*$")
_HOST_SYSTEM = (
    "/usr/lib/",
    "/lib/",
    "/usr/lib64/",
    "/lib64/",
    "/usr/bin/",
    "/usr/sbin/",
    "/bin/",
    "/sbin/",
    "/usr/libexec/",
)
STDLIB = frozenset(sys.stdlib_module_names)


@functools.cache
def stdlib_names(python: str) -> frozenset[str]:
    """The top-level stdlib module names of the artifact's Python ("3.11"), which need not
    be the one running buildkit (3.12 has no ``_sha512``): stdlib-list's table for that
    version, with this interpreter's own names when it is the same version."""
    from stdlib_list import short_versions, stdlib_list

    mine = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if python not in short_versions:
        return STDLIB
    names = frozenset(name.split(".", 1)[0] for name in stdlib_list(python))
    return names | STDLIB if python == mine else names


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


@dataclass(frozen=True, kw_only=True)
class Context:
    """What an artifact says about its members (empty for a plain file)."""

    kind: str = "file"  # file | zipapp | standalone | onefile
    recipe: str = ""
    python: str = ""
    own: frozenset[str] = frozenset()  # members buildkit compiled
    owners: dict[str, str] = field(default_factory=dict)  # member -> "name version"
    wheels: dict[str, str] = field(default_factory=dict)  # top-level name -> "name version"
    wheel_files: dict[str, str] = field(default_factory=dict)  # project -> wheel file name
    native: frozenset[str] = frozenset()  # the recipe's own native packages (normalised)
    toolchain: str = ""  # the interpreter, when buildkit's toolchain built it (else "")


def toolchain_of(info: dict[str, Any] | None) -> str:
    """The interpreter a build info names, when buildkit's hermetic toolchain built it."""
    settings = info.get("settings") if isinstance(info, dict) else None
    if not isinstance(settings, dict) or not settings.get("toolchain"):
        return ""
    return f"{settings.get('interpreter', 'CPython')} {settings['toolchain']}"


def native_of(info: dict[str, Any] | None) -> frozenset[str]:
    """The recipe's own native packages named in a build info (normalised)."""
    names = info.get("native", []) if isinstance(info, dict) else []
    return frozenset(normalize(str(n)) for n in names) if isinstance(names, list) else frozenset()


def from_info(info: dict[str, Any] | None) -> tuple[str, str, dict[str, str]]:
    """Recipe, Python and the wheels (by normalised project name) of a build info."""
    if not isinstance(info, dict):
        return "", "", {}
    wheels: dict[str, str] = {}
    for row in info.get("wheels", []) if isinstance(info.get("wheels"), list) else []:
        m = _WHEEL_FILE.match(str(row).split(" ", 1)[0])
        if m:
            wheels[normalize(m["name"])] = f"{m['name']} {m['version']}"
    return str(info.get("recipe", "")), str(info.get("python", "")), wheels


def wheel_files_of(info: dict[str, Any] | None) -> dict[str, str]:
    """The wheel file (name, version and tags) of each project a build info names."""
    rows = info.get("wheels", []) if isinstance(info, dict) else []
    out: dict[str, str] = {}
    for row in rows if isinstance(rows, list) else []:
        filename = str(row).split(" ", 1)[0]
        if m := _WHEEL_FILE.match(filename):
            out[normalize(m["name"])] = filename
    return out


def _load(raw: bytes) -> dict[str, Any] | None:
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def zip_context(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> Context:
    """Owners of every member from the archive's ``*.dist-info/RECORD`` files."""
    owners: dict[str, str] = {}
    dists: dict[str, str] = {}
    info: dict[str, Any] | None = None
    for entry in infos:
        parts = entry.filename.split("/")
        if len(parts) >= 2 and (d := _DIST_INFO.match(parts[-2])):
            dists[normalize(d["name"])] = f"{d['name']} {d['version']}"
        if parts[-1] == MEMBER and info is None and entry.file_size < 1 << 20:
            info = _load(zf.read(entry))
        if len(parts) < 2 or parts[-1] != "RECORD" or entry.file_size > 16 << 20:
            continue
        m = _DIST_INFO.match(parts[-2])
        if not m:
            continue
        prefix = "/".join(parts[:-2])
        owner = f"{m['name']} {m['version']}"
        for line in zf.read(entry).decode("utf-8", "replace").splitlines():
            name = line.split(",", 1)[0]
            if name:
                owners[f"{prefix}/{name}" if prefix else name] = owner
    recipe, python, wheels = from_info(info)
    return Context(
        kind="zipapp",
        recipe=recipe,
        python=python,
        owners=owners,
        wheels={**dists, **wheels},
        wheel_files=wheel_files_of(info),
        native=native_of(info),
        toolchain=toolchain_of(info),
    )


def tar_context(tar: tarfile.TarFile, members: list[tarfile.TarInfo]) -> Context:
    """A nuitka standalone archive: ``<top>/<main binary>`` is ours."""
    info = None
    own: set[str] = set()
    for entry in members:
        parts = entry.name.split("/")
        if len(parts) == 2 and parts[1] == MEMBER and entry.size < 1 << 20:
            f = tar.extractfile(entry)
            info = _load(f.read()) if f is not None else None
        elif len(parts) == 2 and entry.mode & 0o111 and ".so" not in parts[1]:
            own.add(entry.name)
    recipe, python, wheels = from_info(info)
    return Context(
        kind="standalone",
        recipe=recipe,
        python=python,
        own=frozenset(own),
        wheels=wheels,
        wheel_files=wheel_files_of(info),
        native=native_of(info),
        toolchain=toolchain_of(info),
    )


#: A native file's component, its origin ("psutil 7.0.0", "CPython 3.11") and, where
#: known, the exact source (the wheel's file name, with its tags).
Placement = tuple[Component, str, str]


def _wheel(owner: str, context: Context, filename: str = "") -> Placement:
    """A file of a wheel: our own code when the wheel is one of the recipe's native
    packages, else a third party's."""
    project = normalize(owner.split(" ", 1)[0])
    filename = filename or context.wheel_files.get(project, "")
    if project in context.native:
        return Component.OWN, f"{context.recipe or 'recipe'} native package {owner}", filename
    return Component.WHEEL, owner, filename


def classify(member: str, artifact: str, context: Context) -> Placement:
    """The component of one native file, its origin (who made it) and its source."""
    if context.kind == "file":
        return _host_file(artifact)
    if member in context.own or (context.kind == "onefile" and member == ""):
        return Component.OWN, context.recipe or "buildkit build", ""
    if member in context.owners:
        return _wheel(context.owners[member], context)
    parts = member.split("/")
    if parts[0] == ".deps" and len(parts) > 2 and (m := _WHEEL_FILE.match(parts[1])):
        return _wheel(f"{m['name']} {m['version']}", context, parts[1])
    if context.kind == "standalone":
        parts = parts[1:]
    if parts and parts[0] == "site-packages":
        parts = parts[1:]
    name = parts[-1] if parts else member
    python = f"CPython {context.python}".strip() if context.python else "CPython"
    interpreter: Placement = (
        (Component.TOOLCHAIN, context.toolchain, "")
        if context.toolchain
        else (Component.INTERPRETER, python, "")
    )
    if name.startswith("libpython") or "lib-dynload" in parts:
        return interpreter
    if len(parts) == 1 and name.split(".", 1)[0] in stdlib_names(context.python):
        return interpreter
    if parts and normalize(parts[0]) in context.wheels:
        return _wheel(context.wheels[normalize(parts[0])], context)
    if len(parts) > 1 and parts[0].endswith(".libs"):  # auditwheel's vendored libraries
        project = normalize(parts[0][: -len(".libs")])
        owner = context.wheels.get(project, parts[0][:-5])
        return Component.WHEEL, owner, context.wheel_files.get(project, "")
    if _SYSTEM_LIB.match(name):
        return Component.SYSTEM, "copied from the build host", ""
    return Component.UNKNOWN, "", ""


def _host_file(path: str) -> Placement:
    if "/lib-dynload/" in path or re.search(r"/libpython3[^/]*\.so", path):
        return Component.INTERPRETER, "CPython", ""
    if m := re.search(r"/site-packages/([^/]+)/", path):
        return Component.WHEEL, m.group(1), ""
    if path.startswith(_HOST_SYSTEM):
        return Component.SYSTEM, "host system", ""
    return Component.OWN, "audited file", ""
