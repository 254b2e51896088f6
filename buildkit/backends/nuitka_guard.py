"""A Nuitka user plugin: compile buildkit's extraction-folder guard into the onefile
bootstrap.

Nuitka's bootstrap extracts the payload into ``--onefile-tempdir-spec`` and runs the
program from there; it creates missing folders but uses an existing one whoever owns it,
whatever its mode, and through a symbolic link. ``onefile_guard.c`` checks that folder
chain before the bootstrap's ``main()`` runs (a constructor) and refuses to start when
another user could have written into it. Nuitka compiles a plugin's extra code files whose
name holds ``onefile_`` into the bootstrap only, not into the program.

With ``BUILDKIT_SECCOMP_SLOT=1`` in its environment (the recipe's ``seccomp = "enforce"``),
it also compiles the two seccomp stages, each after ``seccomp_install.h``:
``onefile_seccomp.c`` into the bootstrap (an empty slot for both filters, which buildkit
writes after the checks, see :mod:`buildkit.seccomp.slot`, and the constructor that
installs the first and hands the second on), and ``program_seccomp.c`` into the program
(the constructor that installs the second before the program's own code runs).
"""

from __future__ import annotations

import os
from pathlib import Path

from nuitka.options.Options import getOnefileTempDirSpec, isOnefileMode
from nuitka.plugins.PluginBase import NuitkaPluginBase

SOURCE = Path(__file__).with_name("onefile_guard.c")
SECCOMP = Path(__file__).with_name("onefile_seccomp.c")
PROGRAM = Path(__file__).with_name("program_seccomp.c")
INSTALL = Path(__file__).with_name("seccomp_install.h")
PREFIX = "{CACHE_DIR}/"


def c_string(text: str) -> str:
    """``text`` as a C string literal (octal escapes for anything but [A-Za-z0-9._/-])."""
    safe = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._/-")
    out = "".join(chr(b) if chr(b) in safe else f"\\{b:03o}" for b in text.encode())
    return f'"{out}"'


def guard_source(spec: str) -> str:
    """The guard's C source for a ``{CACHE_DIR}/…`` temp-dir spec."""
    tail = spec.removeprefix(PREFIX)
    if not spec.startswith(PREFIX) or not tail or "{" in tail or ".." in tail.split("/"):
        raise ValueError(f"the onefile guard needs a {PREFIX}<folders> spec, not {spec!r}")
    return (
        f"#define BUILDKIT_RUN_TAIL {c_string(tail)}\n"
        f"#define BUILDKIT_ARTIFACT {c_string(_artifact(tail))}\n"
        + SOURCE.read_text(encoding="utf-8")
    )


def _artifact(tail: str) -> str:
    return tail.rsplit("/", 1)[-1].rsplit("-", 1)[0]


def seccomp_source(spec: str, stage: Path = SECCOMP) -> str:
    """A seccomp stage's C source (the bootstrap's, or ``PROGRAM``), naming the artifact
    as the guard does."""
    return (
        f"#define BUILDKIT_ARTIFACT {c_string(_artifact(spec))}\n"
        + INSTALL.read_text(encoding="utf-8")
        + stage.read_text(encoding="utf-8")
    )


class BuildkitGuard(NuitkaPluginBase):  # type: ignore[misc]
    plugin_name = "buildkit-guard"
    plugin_desc = "Refuse to extract a onefile payload into a folder others could write."

    @staticmethod
    def isAlwaysEnabled() -> bool:
        return True

    def getExtraCodeFiles(self) -> dict[str, str] | None:
        if not isOnefileMode():
            return None
        spec = getOnefileTempDirSpec()
        try:
            files = {"onefile_buildkit_guard.c": guard_source(spec)}
        except ValueError as exc:
            self.sysexit(str(exc))
            return None
        if os.environ.get("BUILDKIT_SECCOMP_SLOT") == "1":
            files["onefile_buildkit_seccomp.c"] = seccomp_source(spec)
            # no "onefile_" in the name: Nuitka compiles it into the program
            files["buildkit_seccomp_program.c"] = seccomp_source(spec, PROGRAM)
        return files
