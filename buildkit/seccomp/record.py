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

**The program's part.** An enforcing binary installs a filter of the program's own (see
``onefile_seccomp.c``, ``zipapp_seccomp.py``), for what the program itself does.
:func:`recorded` with ``split`` tells the program's calls from what started it:

* ``"exec"`` (a onefile binary): the first process and its children until they exec are
  the bootstrap; a process that execs from there on, and everything it starts, is the
  program. With strace that follows from the process ids (``clone(…) = 1235``) and each
  successful ``execve``; with QEMU, whose every exec opens a new log file, the first
  process's file is the bootstrap's and every other file the program's.
* ``"marker"`` (a zipapp): a process is the program from its ``stat`` of
  :data:`MARKER` on (the boot module makes it where it would install the filter), and so
  is every process it starts from then on.

It also says whether the program started programs (``execve``) or made processes
(``fork``, ``vfork``, a ``clone`` without ``CLONE_THREAD``): the program's filter denies
both unless the checks saw them.

Bounded: a log larger than :data:`MAX_LOG` stops the recording with an error (a check
that makes millions of calls should not fill the disk); names are checked against
libseccomp's table for the architecture.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ..backends import zipapp_seccomp
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
#: One logged line of either recorder: the process, the call, and the rest.
_LINE = re.compile(rb"^(\d+) +(?:<\.\.\. )?([a-z_][a-z0-9_]*)(?:\(| resumed>)(.*)$")
_RESULT = re.compile(rb"= (\d+)(?: <[0-9.]+>)?\s*$")
_CHILD = frozenset({"clone", "clone3", "fork", "vfork"})
_EXEC = frozenset({"execve", "execveat"})
_QEMU_FILE = re.compile(r"^(.*)\.(\d+)$")
#: What a zipapp's first build stats where its program starts.
MARKER = zipapp_seccomp.MARKER.encode()
SPLITS = ("", "exec", "marker")


@dataclass(frozen=True, kw_only=True)
class Recording:
    """What one recorder logged: every call of the process tree, the address families
    socket() asked for (None: one had no name here), and the program's own part (the
    whole tree when the recording was not split)."""

    calls: frozenset[str]
    families: frozenset[str] | None
    program: frozenset[str]
    execs: bool  # the program started another program
    forks: bool  # the program made a process (not a thread)


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


def recorded(arch: str, how: str, logs: Iterable[Path], *, split: str = "") -> Recording:
    """What one recorder's logs hold (``how``: "strace" or "qemu"), each log read once;
    ``split``: how to tell the program's part (see above; "": the whole tree)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    paths = sorted(logs)
    texts = _read(paths)
    if how == "strace":
        calls = _strace_calls(arch, texts)
        lines = [line for text in texts for line in _stages_strace(text, split)]
    else:
        calls = _qemu_calls(arch, texts)
        lines = _stages_qemu(paths, texts, split)
    program: set[str] = set()
    execs = forks = False
    for name, text in lines:
        program.add(name)
        execs = execs or name in _EXEC
        forks = (
            forks
            or name in ("fork", "vfork")
            or (name in ("clone", "clone3") and b"CLONE_THREAD" not in text)
        )
    return Recording(
        calls=calls,
        families=_families(texts),
        program=frozenset(_known(arch, program)) & calls,
        execs=execs,
        forks=forks,
    )


def _calls(text: bytes) -> list[tuple[int, str, bytes]]:
    """Each logged call once, in order: (process, name, its text with flags and result);
    a call split by another thread's lines is joined and placed where it ended."""
    calls: list[tuple[int, str, bytes]] = []
    pending: dict[int, bytes] = {}
    for line in _INSTALLING.sub(b"", text).splitlines():
        match = _LINE.match(line)
        if match is None:
            continue
        pid, name, rest = int(match[1]), match[2].decode(), match[3]
        if rest.endswith(b"<unfinished ...>"):
            pending[pid] = rest
            continue
        calls.append((pid, name, pending.pop(pid, b"") + rest))
    return calls


def _stages_strace(text: bytes, split: str) -> list[tuple[str, bytes]]:
    """The program's calls in one strace log: (name, text) of each."""
    calls = _calls(text)
    if not calls:
        return []
    root = calls[0][0]
    parent: dict[int, tuple[int, int]] = {}  # child: (parent, where it was made)
    execs: dict[int, list[int]] = {}  # process: where it exec'd (successfully)
    marks: dict[int, int] = {}  # process: where it marked the program's start
    for index, (pid, name, rest) in enumerate(calls):
        if MARKER in rest:
            marks.setdefault(pid, index)
        result = _RESULT.search(rest)
        if name in _CHILD and result is not None:
            parent.setdefault(int(result[1]), (pid, index))
        elif (
            name in _EXEC
            and result is not None
            and result[1] == b"0"
            and not (pid == root and index == 0)  # the tracer starting the program
        ):
            execs.setdefault(pid, []).append(index)

    @cache
    def program(pid: int, index: int) -> bool:
        if not split:
            return True
        if split == "exec" and pid != root and any(e < index for e in execs.get(pid, ())):
            return True
        if split == "marker" and marks.get(pid, index + 1) < index:
            return True
        made = parent.get(pid)
        return made is not None and made[0] != pid and program(*made)

    return [
        (name, rest)
        for index, (pid, name, rest) in enumerate(calls)
        if not (pid == root and index == 0) and program(pid, index)
    ]


def _stages_qemu(paths: list[Path], texts: list[bytes], split: str) -> list[tuple[str, bytes]]:
    """The program's calls in QEMU's logs (one file per exec'd process, ``<run>.<pid>``):
    every file but the first process's of each run ("exec"), or what follows the marker
    in a file and the files of the processes made from then on ("marker")."""
    if split == "marker":
        return _marked_qemu(paths, texts)
    runs: dict[str, list[tuple[int, list[tuple[int, str, bytes]]]]] = {}
    for path, text in zip(paths, texts, strict=True):
        match = _QEMU_FILE.match(path.name)
        run, pid = (match[1], int(match[2])) if match else (path.name, -1)
        runs.setdefault(run, []).append((pid, _calls(text)))
    lines: list[tuple[str, bytes]] = []
    for files in runs.values():
        children = {
            int(result[1])
            for _, calls in files
            for _, name, rest in calls
            if name in _CHILD and (result := _RESULT.search(rest)) is not None
        }
        roots = [pid for pid, _ in files if pid not in children]
        # the bootstrap's file, when the logs say which one it is
        first = roots[0] if split and len(roots) == 1 else None
        for pid, calls in files:
            if pid != first:
                lines += [(name, rest) for _, name, rest in calls]
    return lines


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


def _marked_qemu(paths: list[Path], texts: list[bytes]) -> list[tuple[str, bytes]]:
    files = [_calls(text) for text in texts]
    pids = [int(m[2]) if (m := _QEMU_FILE.match(p.name)) else -1 for p in paths]
    made_in: dict[int, bool] = {}  # child: made by the program
    program = [[False] * len(calls) for calls in files]
    for _ in range(len(files) + 1):  # until nothing changes: files start in any order
        for f, calls in enumerate(files):
            on = made_in.get(pids[f], False)
            for i, (_, name, rest) in enumerate(calls):
                program[f][i] = on
                on = on or MARKER in rest
                result = _RESULT.search(rest)
                if name in _CHILD and result is not None and on:
                    made_in[int(result[1])] = True
    return [
        (name, rest)
        for f, calls in enumerate(files)
        for i, (_, name, rest) in enumerate(calls)
        if program[f][i]
    ]
