"""Least privilege from the recipe's checks: the system calls a program needs, as a
seccomp profile.

While the checks run a linux artifact (see :mod:`buildkit.checks.run`), every system call
the program and its children make is recorded (:mod:`.record`). A target's profile is
what its artifacts' checks made, plus :data:`ALWAYS` and the recipe's
``[hardening].seccomp_allow``; the release ships it as an OCI/Docker seccomp profile
(``docker run --security-opt seccomp=FILE``) and as a systemd drop-in
(``SystemCallFilter=``).

A call the checks never made is denied by the profile: checks that only ask for
``--help`` make a profile that breaks the program's real work (``build`` warns: see
:func:`thin`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import libseccomp

MODES = ("off", "record", "enforce")

#: Calls every profile allows, whatever the checks made: ending a thread or the process,
#: returning from a signal handler and restarting an interrupted call (signals come at any
#: time), executing the program (QEMU cannot log a child's exec, see :mod:`.record`),
#: waiting on and yielding to another thread (made only when threads happen to contend),
#: and the memory calls of the C allocator (whether realloc moves a block with mremap, or
#: returns memory with madvise or munmap, depends on the address layout, which differs at
#: every start): one run makes them and the next not, and a profile must not depend on it.
ALWAYS = (
    "brk",
    "execve",
    "exit",
    "exit_group",
    "futex",
    "madvise",
    "mmap",
    "mprotect",
    "mremap",
    "munmap",
    "restart_syscall",
    "rt_sigreturn",
    "sched_yield",
)

#: Arguments that only ask a program about itself: checks with nothing else exercise
#: its start, not its work, and a profile recorded from them denies that work.
_ABOUT_ITSELF = frozenset({"--help", "-h", "--version", "-V", "version", "help"})


@dataclass(frozen=True, kw_only=True)
class Profile:
    """The calls allowed on one architecture, and what they were recorded from."""

    arch: str  # x86_64 | aarch64
    calls: tuple[str, ...]  # sorted, each known to libseccomp on arch
    recorded: tuple[str, ...]  # what the checks made beyond ALWAYS (a subset of calls)
    sources: tuple[str, ...]  # the artifacts whose checks were recorded

    def to_oci(self) -> dict[str, Any]:
        """The OCI runtime spec's seccomp object, as Docker, Podman and containerd read it."""
        return {
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "architectures": [libseccomp.OCI_ARCH[self.arch]],
            "syscalls": [{"names": list(self.calls), "action": "SCMP_ACT_ALLOW"}],
        }

    def oci_text(self) -> str:
        return json.dumps(self.to_oci(), indent=2) + "\n"

    def systemd_text(self, title: str) -> str:
        """A drop-in for the program's service (``systemctl edit NAME.service``)."""
        lines = [
            f"# {title}: the system calls its checks made, recorded by buildkit.",
            "# Put it in /etc/systemd/system/NAME.service.d/seccomp.conf, then",
            "# systemctl daemon-reload. A denied call fails with EPERM.",
            "[Service]",
            "NoNewPrivileges=yes",
            "SystemCallArchitectures=native",
            "SystemCallErrorNumber=EPERM",
        ]
        line = "SystemCallFilter="
        for call in self.calls:
            if len(line) + len(call) > 100:
                lines.append(line.rstrip())
                line = "SystemCallFilter="
            line += call + " "
        lines.append(line.rstrip())
        return "\n".join(lines) + "\n"


def make(arch: str, recorded: Mapping[str, Iterable[str]], extra: Iterable[str] = ()) -> Profile:
    """The profile of ``arch`` from the calls recorded per artifact, :data:`ALWAYS` and
    ``extra`` (the recipe's additions; a name ``arch`` does not have is left out)."""
    made = frozenset(c for calls in recorded.values() for c in calls)
    wanted = made | set(ALWAYS) | set(extra)
    calls = tuple(sorted(c for c in wanted if libseccomp.number(arch, c) is not None))
    # what the checks made beyond ALWAYS: the part that does not change from run to run
    own = tuple(sorted(made - set(ALWAYS)))
    return Profile(arch=arch, calls=calls, recorded=own, sources=tuple(sorted(recorded)))


def thin(argument_lists: Iterable[Iterable[str]]) -> bool:
    """Whether checks with these arguments only ask the program about itself."""
    return all(set(args) <= _ABOUT_ITSELF for args in argument_lists)
