"""What an audit says about one native file: each check in one of four states, with the
evidence seen. A file that cannot be parsed is a finding of its own, never a pass."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class State(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NOT_APPLICABLE = "n/a"
    UNKNOWN = "unknown"


class Component(StrEnum):
    """Where a native file comes from: who can fix it."""

    OWN = "own"  # code buildkit compiled for the recipe (or a file audited on its own)
    INTERPRETER = "interpreter"  # the Python interpreter and its stdlib extension modules
    # the interpreter and the libraries in it, compiled by buildkit's hermetic toolchain
    TOOLCHAIN = "toolchain"
    WHEEL = "wheel"  # a third-party wheel (origin: name and version)
    SYSTEM = "system"  # a system library (copied into the artifact, or on the host)
    UNKNOWN = "unknown"


#: The oldest glibc any glibc target promises (targets.toml's glibc_baseline), and the
#: libstdc++ versions that go with it (manylinux2014's policy, as auditwheel has it).
GLIBC_BASELINE = {"GLIBC": (2, 17), "GLIBCXX": (3, 4, 19), "CXXABI": (1, 3, 7)}

# Every check an audit can report, in the order reports show them.
ELF_CHECKS = (
    "relro", "canary", "nx", "pie", "fortify", "rpath", "stripped", "cet", "bti", "glibc",
    "seccomp", "wx", "stack-clash",
)  # fmt: skip
#: What a program without a seccomp filter of its own says (the audit turns it into n/a
#: for the programs a filtered onefile bootstrap starts).
NO_FILTER = 'no seccomp filter (built without [hardening] seccomp = "enforce")'
MACHO_CHECKS = ("pie", "canary", "nx", "nx-heap", "codesign", "hardened-runtime", "pagezero")
ALL_CHECKS = tuple(dict.fromkeys(ELF_CHECKS + MACHO_CHECKS))


@dataclass(frozen=True, kw_only=True)
class Check:
    name: str
    state: State
    evidence: str


@dataclass(frozen=True, kw_only=True)
class FileReport:
    path: str  # as shown to people: a file, or "archive!member" (nested: "a!b!c")
    format: str  # elf | mach-o | unparseable
    # executable | pie-executable | static | static-pie | shared-library | python-extension
    # | bundle | relocatable | unknown
    kind: str
    arch: str
    libc: str  # glibc | musl | libSystem | none | unknown
    checks: tuple[Check, ...]
    component: Component = Component.UNKNOWN
    origin: str = ""  # e.g. "psutil 7.0.0", "CPython 3.11", the recipe name
    # where exactly it came from, when known: the wheel's file name (with its tags), the
    # distribution package ("pkg:deb/debian/libssl3@3.0.15-1"), ...
    source: str = ""
    artifact: str = ""  # the file given on the command line (or found in a folder)
    sha256: str = ""  # of the file's bytes (as shipped inside its artifact)
    compiler: str = ""  # compilers and linker named in the file (ELF .comment)

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)

    def placed(
        self, *, component: Component, origin: str, artifact: str, source: str = ""
    ) -> FileReport:
        return replace(self, component=component, origin=origin, source=source, artifact=artifact)

    @property
    def member(self) -> str:
        """The path inside its artifact ("" for a file audited on its own)."""
        prefix = self.artifact + "!"
        return self.path[len(prefix) :] if self.path.startswith(prefix) else ""

    @property
    def failing(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.checks if c.state is State.FAIL)


def unparseable(path: str, why: str, *, fmt: str = "unparseable") -> FileReport:
    """A file that looked native but could not be read: a finding, never a pass."""
    return FileReport(
        path=path,
        format=fmt,
        kind="unknown",
        arch="unknown",
        libc="unknown",
        checks=(Check(name="parse", state=State.FAIL, evidence=why),),
    )
