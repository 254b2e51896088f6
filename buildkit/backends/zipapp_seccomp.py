"""The program filter of a zipapp built with ``seccomp = "enforce"`` for a Linux target.

A zipapp has no native bootstrap to carry a filter: its boot module
(``__buildkit_boot__``, see :mod:`.launcher`) installs it, after pex's or shiv's own start
and before it imports the recipe's entry point, with one ``seccomp(2)`` call through
``ctypes`` (no libseccomp on the host; ``SECCOMP_FILTER_FLAG_TSYNC`` so that every thread
is under it). It is the same program filter as a native binary's second stage
(:func:`buildkit.seccomp.make_program`): no exec unless the checks saw one, threads but no
processes unless they saw a fork, ``clone3`` answered with ENOSYS.

Two builds make it. The first (empty filter) only marks where the program starts, with a
``stat`` of :data:`MARKER`, so that the recording of its checks can tell the program's
calls from the interpreter's start (:mod:`buildkit.seccomp.record`); the second carries
the filter compiled from that recording, and the checks run again against it. The second
marks the start too, so ``buildkit trace`` can tell them apart in its runs as well.

Where the filter cannot be installed (no ``ctypes`` in the host's Python, a kernel or an
emulator without seccomp, another architecture than the filter's), the program says so in
one line and stops with exit code 126, as the native binary does, unless
``BUILDKIT_SECCOMP_UNAVAILABLE=run`` says to run unconfined (read only then). A filter
around the program that denies ``prctl`` or ``seccomp`` gets the hint to use the
release's own profile.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

#: The path the first build's boot module stats where the program starts (never exists).
MARKER = "/buildkit-seccomp/the-program-starts-here"
#: seccomp(2)'s number per architecture (the asm-generic table for aarch64).
_SECCOMP_NR = {"x86_64": 317, "aarch64": 277}


@dataclass(frozen=True, kw_only=True)
class ProgramFilter:
    """The program filter a zipapp's second build carries, and what it allows (for the
    audit, which reads the boot module's constants)."""

    bpf: str  # classic BPF, 16 hex digits per instruction
    calls: int
    execs: bool  # it may start programs
    forks: bool  # it may make processes

    def encode(self) -> str:
        """As the build passes it on (``BuildJob.seccomp_filter``)."""
        return json.dumps(
            {"bpf": self.bpf, "calls": self.calls, "execs": self.execs, "forks": self.forks},
            sort_keys=True,
        )

    @classmethod
    def decode(cls, text: str) -> ProgramFilter:
        doc = json.loads(text)
        return cls(bpf=str(doc["bpf"]), calls=int(doc["calls"]), execs=doc["execs"] is True,
                   forks=doc["forks"] is True)  # fmt: skip


_TEMPLATE = """
SECCOMP_ARCH = __ARCH__
SECCOMP_NR = __NR__
SECCOMP_FILTER = __FILTER__  # the program filter, 16 hex digits per BPF instruction
SECCOMP_CALLS = __CALLS__  # what it allows, for the audit
SECCOMP_EXECS = __EXECS__
SECCOMP_FORKS = __FORKS__


def _seccomp_refuse(why, unavailable):
    name = os.path.basename(os.environ.get("PEX") or sys.argv[0])
    if unavailable and os.environ.get("BUILDKIT_SECCOMP_UNAVAILABLE") == "run":
        sys.stderr.write(
            "%s: warning: cannot install its program's seccomp filter (%s); running "
            "without it as BUILDKIT_SECCOMP_UNAVAILABLE says\\n" % (name, why)
        )
        return
    if unavailable:
        hint = ("run it on Linux %s with seccomp and a Python with ctypes, or set "
                "BUILDKIT_SECCOMP_UNAVAILABLE=run to run it unconfined" % SECCOMP_ARCH)
    else:
        hint = ("a seccomp profile around it (a container's, a systemd service's) denies "
                "prctl() or seccomp(); run it under the profile its release ships "
                "(NAME.seccomp.json, NAME.seccomp.conf), which allows them, or add both "
                "calls to yours")
    sys.stderr.write(
        "%s: error: refusing to start: its program's seccomp filter cannot be installed "
        "(%s)\\n  hint: %s\\n" % (name, why, hint)
    )
    sys.exit(126)


def _seccomp():
    try:  # mark where the program starts, for a recording (buildkit trace, the checks)
        os.stat(__MARKER__)
    except OSError:
        pass
    if not SECCOMP_FILTER:  # the first build
        return
    if os.uname().machine != SECCOMP_ARCH:
        return _seccomp_refuse("the filter is for %s, this is %s"
                               % (SECCOMP_ARCH, os.uname().machine), True)
    try:
        import ctypes
    except ImportError as exc:
        return _seccomp_refuse("this Python has no ctypes: %s" % exc, True)
    import errno

    raw = bytes.fromhex(SECCOMP_FILTER)

    class _Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]

    program = _Program(len(raw) // 8, raw)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long

    def install():
        # SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC: every thread
        return libc.syscall(ctypes.c_long(SECCOMP_NR), ctypes.c_long(1), ctypes.c_long(1),
                            ctypes.byref(program))

    if install() == 0:
        return
    code = ctypes.get_errno()
    if code == errno.EACCES:  # no_new_privs first (PR_SET_NO_NEW_PRIVS)
        if libc.prctl(38, 1, 0, 0, 0) == 0 and install() == 0:
            return
        code = ctypes.get_errno()
    _seccomp_refuse(os.strerror(code), code in (errno.ENOSYS, errno.EINVAL))
"""


def boot_block(arch: str, program: str) -> str:
    """The boot module's seccomp part: ``program`` the program filter for ``arch``
    (:meth:`ProgramFilter.encode`; empty: only mark where the program starts)."""
    found = ProgramFilter.decode(program) if program else None
    return (
        _TEMPLATE.replace("__ARCH__", repr(arch))
        .replace("__NR__", str(_SECCOMP_NR[arch]))
        .replace("__FILTER__", repr(found.bpf if found else ""))
        .replace("__CALLS__", str(found.calls if found else 0))
        .replace("__EXECS__", repr(bool(found and found.execs)))
        .replace("__FORKS__", repr(bool(found and found.forks)))
        .replace("__MARKER__", repr(MARKER))
    )
