"""A buildkit zipapp's boot module, as the audit reads it.

An enforcing zipapp carries no native file that installs a filter: its boot module
(``__buildkit_boot__.py``, backends/launcher.py) installs the program filter through
ctypes before the entry point is imported (backends/zipapp_seccomp.py). The audit reads
the module's constants, never runs it, and reports one row for it: the ``seccomp``
check, passed with what the program filter allows, or failed when the module carries an
empty filter. A zipapp built without ``seccomp = "enforce"`` has no such constants and
no row. The module is input like any member: bounded, matched by fixed patterns.
"""

from __future__ import annotations

import hashlib
import re

from .findings import Check, Component, FileReport, State

#: The boot module's name in the zip (pex: at its root; shiv: under site-packages/).
NAME = "__buildkit_boot__.py"
#: The most bytes of it read (it is a few KiB, the filter at most 64 KiB of hex).
MAX = 1 << 20

_ARCH = re.compile(rb"^SECCOMP_ARCH = '(x86_64|aarch64)'$", re.MULTILINE)
_FILTER = re.compile(rb"^SECCOMP_FILTER = '([0-9a-f]*)'", re.MULTILINE)
_CALLS = re.compile(rb"^SECCOMP_CALLS = (\d{1,5})\b", re.MULTILINE)
_EXECS = re.compile(rb"^SECCOMP_EXECS = (True|False)$", re.MULTILINE)
_FORKS = re.compile(rb"^SECCOMP_FORKS = (True|False)$", re.MULTILINE)


def is_boot(member: str) -> bool:
    return member == NAME or member.endswith("/" + NAME)


def report(text: bytes, path: str, artifact: str) -> FileReport | None:
    """The boot module's row, or None when it installs no filter (built without
    ``seccomp = "enforce"``, or not buildkit's)."""
    arch = _ARCH.search(text)
    if arch is None:
        return None
    bpf = _FILTER.search(text)
    calls, execs, forks = _CALLS.search(text), _EXECS.search(text), _FORKS.search(text)
    if bpf is None or not bpf[1] or len(bpf[1]) % 16 or len(bpf[1]) // 16 > 4096:
        check = Check(
            name="seccomp",
            state=State.FAIL,
            evidence="the boot module carries no usable program filter (empty or damaged)",
        )
    else:
        check = Check(
            name="seccomp",
            state=State.PASS,
            evidence=f"enforced by the boot module (ctypes, before the entry point is "
            f"imported): the program's own filter: "
            f"{int(calls[1]) if calls else '?'} calls allowed on {arch[1].decode()} "
            f"({len(bpf[1]) // 16} BPF instructions), others fail with EPERM, "
            f"{'may start programs' if execs and execs[1] == b'True' else 'starts no program'}"
            f", {'may fork' if forks and forks[1] == b'True' else 'threads only'}; the "
            "interpreter's start runs under the release's profile only",
        )
    return FileReport(
        path=path,
        format="python",
        kind="boot-module",
        arch=arch[1].decode(),
        libc="none",
        checks=(check,),
        component=Component.OWN,
        origin="buildkit's boot module",
        artifact=artifact,
        sha256=hashlib.sha256(text).hexdigest(),
    )
