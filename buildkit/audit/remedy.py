"""Who must fix a native file that fails a check, and how: the answer depends on its
component. Our own code gets the flags the policy injects; a third-party wheel gets its
project, version and wheel file with the three ways out (build it from its sdist with
the policy's flags, ask upstream, waive it); the interpreter gets the toolchain that can
rebuild it hardened; a system library gets the distribution package it came from."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..hardening import check_flags
from .findings import Component, FileReport

_ARCH = {"x86-64": "x86_64", "aarch64": "aarch64", "arm64": "arm64"}
#: The policy's name for a check when it has one with flags (relro: full RELRO).
_REQUIREMENT = {"relro": "relro-full", "rpath": "no-rpath"}
#: What to do about a check no compiler flag sets.
_WITHOUT_FLAGS = {
    "rpath": "link without -rpath/-R outside $ORIGIN (or drop it: patchelf --remove-rpath)",
    "stripped": "ship it stripped (strip --strip-unneeded, or link with -s)",
    "glibc": "compile and link against glibc 2.17 (manylinux2014), as buildkit's hermetic "
    "toolchain does (zig cc -target <arch>-linux-gnu.2.17)",
    "seccomp": 'build the native binary with [hardening] seccomp = "enforce"',
    "codesign": "sign it (codesign --sign …; ad hoc: --sign -)",
    "hardened-runtime": "sign it with the hardened runtime (codesign --options runtime)",
    "nx-heap": "link with -Wl,-no_heap_execution (arm64 has it always)",
    "pagezero": "link without -pagezero_size 0",
    "parse": "the file could not be read as a native file: rebuild it",
    "wx": "link without writable and executable segments (no -z execstack, no linker script "
    "or section flags that make code writable; GNU ld: --no-rwx-segments)",
}
TOOLCHAIN_SOURCE = "buildkit/toolchain/build.py"


@dataclass(frozen=True, kw_only=True)
class Remedy:
    owner: str  # who can fix it
    actions: tuple[str, ...]  # what they can do, best first

    def text(self) -> str:
        return f"{self.owner}: " + "; or ".join(self.actions)


def flags_text(check: str, report: FileReport) -> str:
    """How one check gets into code: the compiler and linker flags buildkit injects."""
    os = "darwin" if report.format == "mach-o" else "linux"
    arch = _ARCH.get(report.arch, report.arch)
    flags = check_flags(_REQUIREMENT.get(check, check), arch, os)
    if report.kind in ("shared-library", "python-extension") and check == "pie":
        return "compile with -fPIC (a shared object is position-independent, not PIE)"
    words = []
    if flags.cflags:
        words.append("compile with " + " ".join(flags.cflags))
    if flags.ldflags:
        words.append("link with " + " ".join(flags.ldflags))
    return " and ".join(words) or _WITHOUT_FLAGS.get(check, f"fix {check}")


def _fixes(report: FileReport, checks: tuple[str, ...]) -> str:
    return "; ".join(f"{c}: {flags_text(c, report)}" for c in checks)


def _project(origin: str) -> tuple[str, str]:
    name, _, version = origin.partition(" ")
    return name, version


def _injected(check: str) -> bool:
    """Whether buildkit has compiler or linker flags for ``check`` on some target."""
    flags = [
        check_flags(_REQUIREMENT.get(check, check), arch, os)
        for os, arch in (("linux", "x86_64"), ("linux", "aarch64"), ("darwin", "arm64"))
    ]
    return any(f.cflags or f.ldflags for f in flags)


def _waiver(report: FileReport, checks: tuple[str, ...], glob: str) -> str:
    checks = tuple(c for c in checks if c != "parse")  # an unreadable file is never waived
    if not checks:
        return "an unreadable file cannot be waived: it fails the gate until it is rebuilt"
    listed = ", ".join(f'"{c}"' for c in checks)
    return (
        f'waive it: [[hardening.waivers]] path = "{glob}", checks = [{listed}], '
        'reason = "…", expires = <date> (the gate counts it again after that date)'
    )


def _glob(report: FileReport) -> str:
    """A waiver path for the file: its last two path parts inside the artifact, or its
    name (a waiver's glob matches any tail of the path)."""
    if not report.member:
        return report.path.rsplit("/", 1)[-1]
    parts = re.split(r"[/!]", report.member)
    return "/".join(parts[-2:])


def remedy(
    report: FileReport, checks: tuple[str, ...], require: tuple[str, ...] | None = None
) -> Remedy:
    """Who can fix ``checks`` failing on ``report``, and how (``require``: the policy's
    required checks, when the audit has a policy)."""
    required = set(require or ())
    waiver = _waiver(report, checks, _glob(report))
    fixes = _fixes(report, checks)
    component = report.component
    if component is Component.OWN:
        missing = [
            c
            for c in checks
            if _REQUIREMENT.get(c, c) not in required and c not in required and _injected(c)
        ]
        hint = (
            f" (add {', '.join(repr(_REQUIREMENT.get(c, c)) for c in missing)} to "
            "[hardening].require and buildkit injects the flags)"
            if missing and require is not None
            else ""
        )
        return Remedy(
            owner=f"the recipe ({report.origin or 'own code'})",
            actions=(f"rebuild it: {fixes}{hint}", waiver),
        )
    if component is Component.WHEEL:
        name, version = _project(report.origin)
        wheel = f", wheel {report.source}" if report.source else ""
        pin = f"=={version}" if version else ""
        return Remedy(
            owner=f"{name} {version}{wheel} (a third-party wheel from PyPI)".replace("  ", " "),
            actions=(
                f"build it from its sdist with the policy's flags: pip download --no-binary "
                f":all: --no-deps {name}{pin}, unpack it into the recipe folder and list that "
                f"folder in [recipe].native (buildkit's native-wheel path: {fixes})",
                f"ask upstream to build its wheels with these flags: "
                f"https://pypi.org/project/{name}/",
                _waiver(report, checks, f"{name.replace('-', '_')}/*"),
            ),
        )
    if component is Component.TOOLCHAIN:
        return Remedy(
            owner=f"buildkit's hermetic toolchain ({report.origin})",
            actions=(
                f"the toolchain compiles it from a hashed source ({TOOLCHAIN_SOURCE}); "
                f"add the flags there and rebuild the toolchain: {fixes}",
                waiver,
            ),
        )
    if component is Component.INTERPRETER:
        return Remedy(
            owner=f"{report.origin or 'CPython'}: the build host's interpreter, as Nuitka "
            "compiled it in",
            actions=(
                "build on a target with buildkit's hermetic toolchain (a zig_target in "
                "targets.toml): it compiles CPython and its libraries from hashed sources "
                f"with the policy's flags ({fixes})",
                waiver,
            ),
        )
    if component is Component.SYSTEM:
        package = report.source or "its distribution package (not found)"
        return Remedy(
            owner=f"{package}: a system library {report.origin or 'from the build host'}",
            actions=(
                "build on a target with buildkit's hermetic toolchain, which compiles the "
                f"library from a hashed source with the policy's flags ({fixes})",
                "ask the distribution to build it with these flags",
                waiver,
            ),
        )
    return Remedy(
        owner="unknown: buildkit could not tell where this file comes from",
        actions=(f"find its source and rebuild it: {fixes}", waiver),
    )


_WHO = {
    Component.OWN: (
        "The file is the recipe's own code (the Nuitka binary or a native package of the "
        "recipe), compiled by buildkit.",
        "List the check in the recipe's [hardening].require: buildkit then injects {fix}. "
        "Until then, a [[hardening.waivers]] entry with a reason and an expiry date.",
    ),
    Component.WHEEL: (
        "The file comes from a third-party wheel downloaded from PyPI (the result names the "
        "project, its version and the wheel file).",
        "Build the project from its sdist with the policy's flags through buildkit's "
        "native-wheel path (unpack it into the recipe folder and list it in "
        "[recipe].native: buildkit then applies {fix}); or ask upstream to build its wheels "
        "that way (the project's page on pypi.org links its tracker); or waive it with a "
        "reason and an expiry date.",
    ),
    Component.INTERPRETER: (
        "The file is part of the Python interpreter Nuitka compiled in from the build host "
        "(the result names the interpreter).",
        "Build the target with buildkit's hermetic toolchain (a zig_target in targets.toml), "
        "which compiles CPython and its libraries from hashed sources with {fix}; or waive "
        "it with a reason and an expiry date.",
    ),
    Component.TOOLCHAIN: (
        "The file was compiled by buildkit's hermetic toolchain (the interpreter, or a "
        "library in it, from a hashed source).",
        f"Add {{fix}} to the toolchain's build ({TOOLCHAIN_SOURCE}) and rebuild it; or "
        "waive it with a reason and an expiry date.",
    ),
    Component.SYSTEM: (
        "The file is a system library copied into the artifact from the build host (the "
        "result names the distribution package and version when it was found).",
        "Build the target with buildkit's hermetic toolchain, which compiles the library "
        "from a hashed source with {fix}; or ask the distribution; or waive it with a "
        "reason and an expiry date.",
    ),
    Component.UNKNOWN: (
        "buildkit could not tell where the file comes from.",
        "Find its source and rebuild it with {fix}; or waive it with a reason and an expiry date.",
    ),
}


def rule_help(check: str, component: Component) -> tuple[str, str]:
    """What a reviewer reads about a check failing on a file of ``component``: who
    owns such a file and the ways to fix it (the flags, on the architectures that have
    them)."""
    mach_o = check in ("nx-heap", "codesign", "hardened-runtime", "pagezero")
    arch = "aarch64" if check == "bti" else "arm64" if mach_o else "x86-64"
    probe = FileReport(
        path="", format="mach-o" if mach_o else "elf", kind="executable", arch=arch,
        libc="", checks=(),
    )  # fmt: skip
    who, how = _WHO[component]
    return who, how.format(fix=flags_text(check, probe))
