"""`buildkit trace RECIPE -- ARGS`: record the calls a manual run of an artifact makes and
add the ones its profile lacks to the recipe's ``[hardening].seccomp_allow``.

The recipe's checks decide the profile; a run the checks do not cover (a flag ops staff
use, a file only production has) may need more. The artifact runs here, as the user
starts it (stdin, stdout and stderr are the terminal's), under ``strace -f``; the calls it
makes, and the address families its sockets ask for, that the release's profile for its
target does not allow are written into the recipe, so the next build allows them. The
recipe file is edited in place, one line, and loaded again before it replaces the old
one; a multi-line ``seccomp_allow`` is not edited (the calls to add are printed instead).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import hardening, targets
from .. import recipe as recipe_mod
from ..errors import InputError, ToolError
from ..fsutil import atomic_write_text, escaped, loads_bounded, read_regular
from . import ALWAYS, family_name, record, sorted_families

log = logging.getLogger(__name__)

_HEADER = re.compile(r"^\s*\[hardening\]\s*(#.*)?$")
_TABLE = re.compile(r"^\s*\[")
_ALLOW = re.compile(r"^\s*seccomp_allow\s*=")
_ONE_LINE = re.compile(r"^\s*seccomp_allow\s*=\s*\[[^\]]*\]\s*(#.*)?$")


@dataclass(frozen=True, kw_only=True)
class Traced:
    artifact: Path
    exit: int
    calls: tuple[str, ...]  # every call the run made
    missing: tuple[str, ...]  # calls and AF_* families the profile and recipe lack: added
    written: bool  # the recipe was changed

    def to_json(self) -> dict[str, object]:
        return {
            "artifact": str(self.artifact),
            "exit": self.exit,
            "calls": list(self.calls),
            "added": list(self.missing),
            "recipe_changed": self.written,
        }


#: Bytes of a release's seccomp profile ``trace`` reads (one of ours: a few KB).
MAX_PROFILE = 4 << 20


def _from_profile(
    profile: Path, allowed: set[str], extra: set[str]
) -> tuple[set[str], set[str] | None]:
    """The calls a release's OCI profile allows added to ``allowed``, and the socket
    families it limits ``socket()`` to (None: any). The profile is input: bounded, and
    one that is not an OCI profile is refused naming it."""
    try:
        doc = loads_bounded(read_regular(profile, MAX_PROFILE))
        rules = doc.get("syscalls", [])
        allowed = allowed | {str(n) for rule in rules for n in rule.get("names", [])}
        plain = {n for rule in rules if not rule.get("args") for n in rule.get("names", [])}
        families = {
            family_name(int(arg.get("valueTwo", -1)))
            for rule in rules
            if rule.get("args") and "socket" in rule.get("names", [])
            for arg in rule["args"]
        }
    except (OSError, ValueError, RecursionError, TypeError, AttributeError, KeyError) as exc:
        raise InputError(
            f"--profile {escaped(str(profile))} is not an OCI seccomp profile: "
            f"{type(exc).__name__}: {exc}"[:300],
            hint="give the release's NAME-VERSION-TARGET.seccomp.json",
        ) from None
    limited = None
    if families and "socket" not in plain:
        limited = {f for f in families if f} | {e for e in extra if e.startswith("AF_")}
    return allowed, limited


def _split(artifact: Path) -> str:
    """How to tell the program's calls in a recording of ``artifact`` (see
    :func:`record.recorded`): "exec" for a native binary with buildkit's seccomp slot,
    "marker" for a zipapp whose boot module marks the program's start, else ""."""
    import lief

    from . import slot

    with artifact.open("rb") as f:
        head = f.read(4)
    if head != b"\x7fELF":
        return "marker" if _boot_marks(artifact) else ""
    binary = lief.ELF.parse(str(artifact))
    return "exec" if binary is not None and binary.get_section(slot.SECTION) else ""


def _boot_marks(artifact: Path) -> bool:
    """Whether ``artifact`` is a zipapp whose boot module installs a program filter (and
    marks where the program starts). Its boot module is found and read bounded as the
    audit finds it (:mod:`buildkit.audit.zipboot`)."""
    import zipfile

    from ..audit import zipboot

    try:
        with zipfile.ZipFile(artifact) as zf:
            for info in zf.infolist():
                if zipboot.is_boot(info.filename) and info.file_size <= zipboot.MAX:
                    return record.MARKER in zf.read(info)
    except (OSError, zipfile.BadZipFile):
        return False
    return False


def _load(path: Path) -> recipe_mod.Recipe:
    from ..backends import format_options

    return recipe_mod.load(path, formats=format_options(), targets=targets.all_targets())


def trace(
    recipe_path: Path,
    artifact: Path,
    args: Sequence[str],
    *,
    profile: Path | None,
    write: bool,
    stdout_to_stderr: bool = False,
) -> Traced:
    """Run ``artifact`` with ``args`` under strace and add what ``profile`` (the release's,
    when there is one) and the recipe do not allow to the recipe (``write``).
    ``stdout_to_stderr``: the program's output goes to stderr (``--json`` keeps stdout)."""
    recipe = _load(recipe_path)
    if not artifact.is_file():
        raise InputError(f"{artifact} is not a file", hint="build the recipe first (--out DIR)")
    arch = platform.machine()
    head = artifact.read_bytes()[:20]
    if head[:4] == b"\x7fELF" and head[18:20] != {"x86_64": b">\x00"}.get(arch, head[18:20]):
        raise InputError(
            f"{artifact} is not a program for this machine ({arch})",
            hint="trace an artifact of this machine's target; run the other's checks on its host",
        )
    strace = shutil.which("strace")
    if strace is None:
        raise ToolError("strace is not installed", hint="apt-get install strace (ci/setup does)")
    with tempfile.TemporaryDirectory(prefix="buildkit-trace-") as name:
        logs = Path(name)
        # the user's own run: their terminal, their environment
        proc = subprocess.run(  # noqa: PLW1510
            [strace, "-f", "-qq", "-o", str(logs / "strace"), "--", str(artifact.resolve()), *args],
            stdout=sys.stderr.fileno() if stdout_to_stderr else None,
        )
        split = _split(artifact)
        made = record.recorded(arch, "strace", logs.iterdir(), split=split)
        calls, asked = made.calls, made.families
    extra = set(recipe.hardening.seccomp_allow if recipe.hardening else ())
    # an enforcing binary's program may start programs or fork only when its checks did
    # or the recipe says so: a run that does needs the recipe to say so
    needs = {c for c, did in (("execve", made.execs), ("fork", made.forks)) if split and did}
    allowed = set(ALWAYS) | extra
    limited: set[str] | None = None  # the families socket() is limited to (None: any)
    if profile is not None and profile.is_file():
        allowed, limited = _from_profile(profile, allowed, extra)
    new_families = asked - limited if asked is not None and limited is not None else set()
    missing = tuple(sorted((calls - allowed) | (needs - extra))) + tuple(
        sorted_families(new_families)
    )
    written = False
    if missing and write:
        written = _add(recipe, missing)
    return Traced(
        artifact=artifact,
        exit=proc.returncode,
        calls=tuple(sorted(calls)),
        missing=missing,
        written=written,
    )


def _add(recipe: recipe_mod.Recipe, calls: Sequence[str]) -> bool:
    """Add ``calls`` to the recipe's ``seccomp_allow``; False when it cannot be edited
    safely (then the caller prints them)."""
    path = recipe.path
    text = path.read_text(encoding="utf-8")
    have = recipe.hardening.seccomp_allow if recipe.hardening else ()
    names = sorted(set(have) | set(calls))
    line = "seccomp_allow = [" + ", ".join(json.dumps(n) for n in names) + "]"
    lines = text.splitlines()
    start = next((i for i, x in enumerate(lines) if _HEADER.match(x)), None)
    if start is None:
        require = ", ".join(json.dumps(c) for c in hardening.DEFAULT_REQUIRE)
        new = text.rstrip("\n") + f"\n\n[hardening]\nrequire = [{require}]\n{line}\n"
    else:
        end = next((i for i in range(start + 1, len(lines)) if _TABLE.match(lines[i])), len(lines))
        at = next((i for i in range(start + 1, end) if _ALLOW.match(lines[i])), None)
        if at is None:
            lines.insert(start + 1, line)
        elif _ONE_LINE.match(lines[at]):
            lines[at] = line
        else:
            log.warning("%s: seccomp_allow spans several lines; add by hand: %s", path, calls)
            return False
        new = "\n".join(lines) + "\n"
    # loaded from beside the recipe (the sources it names are relative to its folder)
    probe = path.with_name(f".{path.name}.trace-{os.getpid()}")
    try:
        probe.write_text(new, encoding="utf-8")
        _load(probe)
    finally:
        probe.unlink(missing_ok=True)
    atomic_write_text(path, new)
    return True
