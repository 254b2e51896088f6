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

An enforcing native binary carries two filters (``onefile_seccomp.c``): the bootstrap's
(:func:`make`, plus :data:`INSTALL`, the calls that install the program's) and the
program's (:func:`make_program`: what the program itself made, without starting programs
or making processes unless the checks saw it do so, or the recipe allows ``execve`` or
``fork``).
"""

from __future__ import annotations

import json
import socket
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
#: And ``rseq``: glibc 2.35 and later registers every thread with it, which QEMU's user
#: mode does not log for a program started by another; denied, portcheck's arm64 binary
#: died with SIGTRAP on an aarch64 kernel. It only registers a per-thread area.
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
    "rseq",
    "rt_sigreturn",
    "sched_yield",
)

#: Calls that do the same thing through another entry; which one a program makes depends
#: on the C library that runs it, not on the program: glibc 2.33 and later stat with
#: newfstatat where glibc 2.31 (Debian 11, Ubuntu 20.04) calls lstat and stat, glibc
#: 2.34 and later starts threads with clone3 where older ones call clone, musl opens with
#: open where glibc calls openat. A profile recorded on the build machine must hold on the
#: bastion's older C library, so a recorded call allows its siblings (those the
#: architecture has; aarch64 has only the *at forms). None of them gives more than the
#: call recorded.
SIBLINGS = (
    ("stat", "lstat", "fstat", "newfstatat", "statx"),
    ("open", "openat", "creat"),
    ("access", "faccessat", "faccessat2"),
    ("readlink", "readlinkat"),
    ("mkdir", "mkdirat"),
    ("unlink", "unlinkat", "rmdir"),
    ("rename", "renameat", "renameat2"),
    ("chmod", "fchmodat"),
    ("chown", "lchown", "fchownat"),
    ("link", "linkat"),
    ("symlink", "symlinkat"),
    ("utime", "utimes", "futimesat", "utimensat"),
    ("dup2", "dup3"),
    ("pipe", "pipe2"),
    ("poll", "ppoll"),
    ("select", "pselect6"),
    ("epoll_wait", "epoll_pwait"),
    ("epoll_create", "epoll_create1"),
    ("eventfd", "eventfd2"),
    ("signalfd", "signalfd4"),
    ("inotify_init", "inotify_init1"),
    ("getdents", "getdents64"),
    ("wait4", "waitid"),
    ("accept", "accept4"),
    ("getrlimit", "setrlimit", "prlimit64"),
    ("nanosleep", "clock_nanosleep"),
    ("time", "gettimeofday", "clock_gettime"),
    ("clone", "clone3"),
)


def with_siblings(calls: Iterable[str]) -> set[str]:
    """``calls`` and the siblings (:data:`SIBLINGS`) of each."""
    found = set(calls)
    for group in SIBLINGS:
        if found & set(group):
            found |= set(group)
    return found


#: What an enforcing binary calls to install its filters: the release's profile for it,
#: and the bootstrap's filter (under which the program installs its own), allow them.
INSTALL = ("prctl", "seccomp")
#: Calls that start another program; the program's filter allows them only when the
#: checks saw the program start one, or the recipe lists ``execve``.
EXECS = ("execve", "execveat")
#: Calls that make a process; the program's filter allows them (and clone without
#: CLONE_THREAD) only when the checks saw the program make one, or the recipe lists
#: ``fork``.
FORKS = ("fork", "vfork")

#: Arguments that only ask a program about itself: checks with nothing else exercise
#: its start, not its work, and a profile recorded from them denies that work.
_ABOUT_ITSELF = frozenset({"--help", "-h", "--version", "-V", "version", "help"})


def family_number(name: str) -> int | None:
    """The number of address family ``name`` (``AF_INET``) on Linux, or None. The numbers
    are the same on every Linux architecture; Python's own table names them."""
    member = socket.AddressFamily.__members__.get(name)
    return int(member) if member is not None and name.startswith("AF_") else None


def family_name(number: int) -> str | None:
    """The name of address family ``number``, or None when Python's table lacks it."""
    try:
        name = socket.AddressFamily(number).name
    except ValueError:
        return None
    return name if name.startswith("AF_") else None


def allowed_families(
    calls: Iterable[str], recorded: Iterable[str] | None, extra: Iterable[str] = ()
) -> tuple[str, ...] | None:
    """The address families ``socket()`` is limited to: those the checks made (socket and
    socketpair) and the recipe's ``AF_*`` additions; None (any family) when a recorded
    family has no name here, or when ``socket`` is allowed but no family is known (a
    recipe that adds "socket" by hand)."""
    if recorded is None:
        return None
    families = set(recorded) | {e for e in extra if family_number(e) is not None}
    if "socket" in set(calls) and not families:
        return None
    return sorted_families(families)


def sorted_families(names: Iterable[str]) -> tuple[str, ...]:
    """Address families in the order of their numbers (AF_UNIX, AF_INET, AF_INET6…)."""
    return tuple(sorted(set(names), key=lambda f: (family_number(f) or 0, f)))


@dataclass(frozen=True, kw_only=True)
class Profile:
    """The calls allowed on one architecture, and what they were recorded from."""

    arch: str  # x86_64 | aarch64
    calls: tuple[str, ...]  # sorted, each known to libseccomp on arch
    recorded: tuple[str, ...]  # what the checks made beyond ALWAYS (a subset of calls)
    sources: tuple[str, ...]  # the artifacts whose checks were recorded
    #: the address families socket() may ask for (None: any); a cheap, safe argument
    #: filter (a program that only talks TCP/IP and to a local socket cannot open a
    #: raw, packet or netlink socket)
    families: tuple[str, ...] | None = None
    #: the program's filter: clone() only for threads (CLONE_THREAD), clone3() answered
    #: with ENOSYS so that libc falls back to clone()
    threads_only: bool = False

    def may_exec(self) -> bool:
        return any(c in self.calls for c in EXECS)

    def limits_socket(self) -> bool:
        return self.families is not None and "socket" in self.calls

    def to_oci(self) -> dict[str, Any]:
        """The OCI runtime spec's seccomp object, as Docker, Podman and containerd read it:
        one rule with every call allowed outright, then, when socket() is limited, one
        rule per address family (its first argument, compared as a 32-bit int)."""
        names = [c for c in self.calls if not (self.limits_socket() and c == "socket")]
        rules: list[dict[str, Any]] = [{"names": names, "action": "SCMP_ACT_ALLOW"}]
        limited = self.families if self.limits_socket() and self.families else ()
        for family in limited:
            rules.append(
                {
                    "names": ["socket"],
                    "action": "SCMP_ACT_ALLOW",
                    "args": [
                        {
                            "index": 0,
                            "value": 0xFFFFFFFF,
                            "valueTwo": family_number(family),
                            "op": "SCMP_CMP_MASKED_EQ",
                        }
                    ],
                }
            )
        return {
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "architectures": [libseccomp.OCI_ARCH[self.arch]],
            "syscalls": rules,
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
        if self.limits_socket():
            lines.append("RestrictAddressFamilies=" + " ".join(self.families or ()))
        return "\n".join(lines) + "\n"


def make(
    arch: str,
    recorded: Mapping[str, Iterable[str]],
    extra: Iterable[str] = (),
    *,
    families: Iterable[str] | None = None,
) -> Profile:
    """The profile of ``arch`` from the calls recorded per artifact, :data:`ALWAYS` and
    ``extra`` (the recipe's additions: calls, and address families named ``AF_*``; a call
    ``arch`` does not have is left out); ``families``: the address families the checks
    asked socket() and socketpair() for (None: unknown, socket() is not limited)."""
    made = frozenset(c for calls in recorded.values() for c in calls)
    extra = tuple(extra)
    wanted = with_siblings(made | set(ALWAYS) | {e for e in extra if family_number(e) is None})
    calls = tuple(sorted(c for c in wanted if libseccomp.number(arch, c) is not None))
    # what the checks made beyond ALWAYS: the part that does not change from run to run
    own = tuple(sorted(made - set(ALWAYS)))
    return Profile(
        arch=arch,
        calls=calls,
        recorded=own,
        sources=tuple(sorted(recorded)),
        families=allowed_families(calls, families, extra),
    )


def make_program(
    arch: str,
    made: Iterable[str],
    extra: Iterable[str] = (),
    *,
    execs: bool,
    forks: bool,
    families: tuple[str, ...] | None = None,
) -> Profile:
    """The program's own filter on ``arch``: the calls the program made (``made``, its
    part of the recording), :data:`ALWAYS` and the recipe's additions; ``execve`` only
    when it started a program (``execs``) or the recipe lists ``execve``; processes only
    when it made one (``forks``) or the recipe lists ``fork``; ``families`` as the
    bootstrap's filter limits socket()."""
    extra = tuple(extra)
    made = frozenset(made)
    execs = execs or any(e in EXECS for e in extra)
    forks = forks or any(e in FORKS for e in extra)
    wanted = with_siblings(made | set(ALWAYS) | {e for e in extra if family_number(e) is None})
    if not execs:
        wanted -= set(EXECS)
    if not forks:
        wanted -= set(FORKS)
    if "clone3" in wanted:
        wanted.add("clone")  # clone3 is answered with ENOSYS: libc falls back to clone
    wanted.discard("clone3")
    calls = tuple(sorted(c for c in wanted if libseccomp.number(arch, c) is not None))
    return Profile(
        arch=arch,
        calls=calls,
        recorded=tuple(sorted(made - set(ALWAYS))),
        sources=(),
        families=families,
        threads_only=not forks,
    )


def thin(argument_lists: Iterable[Iterable[str]]) -> bool:
    """Whether checks with these arguments only ask the program about itself."""
    return all(set(args) <= _ABOUT_ITSELF for args in argument_lists)
