"""Record the system calls a program makes while the recipe's checks run it.

Two recorders, one per kind of place (see :mod:`buildkit.checks.run`):

* **strace** on this machine: ``strace -f -qq -o LOG -- PROGRAM ARGS``; ``-f`` follows
  every child (the onefile bootstrap starts the program it unpacked as a child), so the
  whole process tree is recorded. Lines look like ``1234 openat(AT_FDCWD, …) = 3``, a
  call split by another thread ``1234 read(3, <unfinished ...>`` and later
  ``1234 <... read resumed>…``; signals and exits are not calls.
* **QEMU's own log** on an emulated host: ``QEMU_LOG=strace`` with ``QEMU_LOG_FILENAME``
  ending in ``%d`` makes every emulated process (each exec starts a new QEMU) log the
  *guest's* calls, by the guest's names, to a file of its own. A call QEMU has no name
  for is logged as ``Unknown syscall N``: libseccomp names it. QEMU cannot log what
  happens in a child between its ``fork`` and its ``exec`` once the child closed the log
  file (CPython closes every descriptor above 2 before it execs), so ``execve`` is among
  the calls every profile keeps (:data:`ALWAYS`).

Bounded: a log larger than :data:`MAX_LOG` stops the recording with an error (a check
that makes millions of calls should not fill the disk); names are checked against
libseccomp's table for the architecture.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from ..errors import CheckFailed
from . import family_name as seccomp_family_name
from . import family_number, libseccomp

#: The most bytes one recording may log (all its files together).
MAX_LOG = 512 << 20

_STRACE = re.compile(rb"^\d+ +(?:<\.\.\. )?([a-z_][a-z0-9_]*)(?:\(| resumed>)", re.MULTILINE)
#: A binary with a filter of its own installs it (onefile_seccomp.c): those two calls are
#: made before the filter applies, so the program never needs them allowed.
_INSTALLING = re.compile(
    rb"^\d+ +(?:prctl\(PR_SET_NO_NEW_PRIVS, 1|seccomp\(SECCOMP_SET_MODE_FILTER).*$",
    re.MULTILINE,
)
_QEMU = re.compile(rb"^\d+ ([a-z_][a-z0-9_]*)\(", re.MULTILINE)
#: The first argument of socket() and socketpair(): strace names it (``AF_INET``), QEMU
#: names some (``PF_INET``) and numbers the rest (``10``).
_FAMILY = re.compile(rb"^\d+ +(?:socket|socketpair)\(([A-Z0-9_]+)[,)< ]", re.MULTILINE)
_QEMU_UNKNOWN = re.compile(rb"^\d+ Unknown syscall (\d+)", re.MULTILINE)


def _read(files: Iterable[Path]) -> list[bytes]:
    texts = []
    total = 0
    for path in sorted(files):
        if path.is_symlink() or not path.is_file():
            raise CheckFailed(f"the system call log {path} is not a regular file")
        total += path.stat().st_size
        if total > MAX_LOG:
            raise CheckFailed(
                f"the system call logs are larger than {MAX_LOG >> 20} MiB",
                hint="a check makes too many calls to record; shorten it",
            )
        texts.append(path.read_bytes())
    return texts


def _known(arch: str, names: Iterable[str]) -> set[str]:
    """The names libseccomp knows on ``arch`` (a tracer's own pseudo-names dropped)."""
    return {n for n in names if libseccomp.number(arch, n) is not None}


def from_strace(arch: str, logs: Iterable[Path]) -> frozenset[str]:
    return _strace_calls(arch, _read(logs))


def from_qemu(arch: str, logs: Iterable[Path]) -> frozenset[str]:
    return _qemu_calls(arch, _read(logs))


def families(logs: Iterable[Path]) -> frozenset[str] | None:
    """The address families the logged socket() and socketpair() calls asked for (both
    recorders' formats), or None when one of them has no name here (the profile then
    leaves socket() unlimited rather than guess)."""
    return _families(_read(logs))


def recorded(
    arch: str, how: str, logs: Iterable[Path]
) -> tuple[frozenset[str], frozenset[str] | None]:
    """The calls and the address families in one recorder's logs (``how``: "strace" or
    "qemu"), each log read once."""
    texts = _read(logs)
    calls = _strace_calls(arch, texts) if how == "strace" else _qemu_calls(arch, texts)
    return calls, _families(texts)


def _strace_calls(arch: str, texts: list[bytes]) -> frozenset[str]:
    names: set[str] = set()
    for text in texts:
        names.update(m.decode() for m in _STRACE.findall(_INSTALLING.sub(b"", text)))
    return frozenset(_known(arch, names))


def _qemu_calls(arch: str, texts: list[bytes]) -> frozenset[str]:
    names: set[str] = set()
    for text in texts:
        names.update(m.decode() for m in _QEMU.findall(text))
        for nr in _QEMU_UNKNOWN.findall(text):
            name = libseccomp.name(arch, int(nr))
            if name is None:
                raise CheckFailed(f"QEMU logged system call {int(nr)}, unknown on {arch}")
            names.add(name)
    return frozenset(_known(arch, names))


def _families(texts: list[bytes]) -> frozenset[str] | None:
    found: set[str] = set()
    for text in texts:
        for token in (m.decode() for m in _FAMILY.findall(text)):
            if token.isdigit():
                name = seccomp_family_name(int(token))
            elif token.startswith("PF_"):
                name = "AF_" + token.removeprefix("PF_")
            else:
                name = token
            if name is None or family_number(name) is None:
                return None
            found.add(name)
    return frozenset(found)
