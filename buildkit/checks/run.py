"""Run the recipe's checks against every built artifact, on the closest real host.

Where an artifact runs (its *places*):

* a target this machine runs natively (linux-amd64 here): the file itself, started as
  ops staff start it (``./app``), with a private ``HOME`` and ``TMPDIR``; a zipapp with
  exactly one Python on ``PATH``, of the recipe's version, and a pex whose wheels all
  run on later versions also under each later version this machine has;
* a native binary of that target also on each root of an older glibc made here for it
  (``buildkit host create linux-amd64-bullseye``: Debian 11, glibc 2.31), so a binary
  that needs a newer glibc than the bastion hosts have fails here, not there;
* linux-arm64 and alpine-arm64: the emulated host of that target, when it was created
  here (``buildkit host create``), under QEMU;
* anything else (darwin-arm64 on Linux): not run; the record says why, and that only the
  static checks (the Mach-O audit, the wheel tags) stand for it.

Every outcome, passed or not, goes into the release's manifest and provenance; a failed
check raises :class:`ChecksFailed` (exit 1) before anything is published.
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import hashlib
import json
import logging
import os
import platform
import re
import shlex
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .. import targets, tools
from ..cache import Cache
from ..errors import BuildkitError, CheckFailed
from ..release.manifest import ArtifactRecord
from . import fixtures, pythons
from .model import Check

if TYPE_CHECKING:
    from ..seccomp import Profile

log = logging.getLogger(__name__)

#: What a record keeps of a program's output (its end: where a failure says why).
KEEP = 2000
#: How much of each output stream a check reads and judges; more is a failure of its own
#: (a program that writes without end until its timeout must not fill the memory).
READ_AT_MOST = 16 << 20
#: How much slower a program runs under QEMU user emulation than natively (timeouts).
EMULATED_SLOWDOWN = 10
INSIDE = "/opt/buildkit-check"
#: What a run under QEMU says of an artifact with a filter of its own (onefile_seccomp.c,
#: zipapp_seccomp.py).
UNFILTERED = "its seccomp filter not installed: QEMU's user mode has no seccomp"
#: Set by an emulated builder for the build inside it: "qemu" (this machine is emulated).
EMULATED_ENV = "BUILDKIT_EMULATED"


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """One check, run once in one place."""

    check: str
    command: tuple[str, ...]  # as run: placeholders replaced (ports differ from run to run)
    written: tuple[str, ...]  # as the recipe writes it: what the release records
    expected: str
    exit: int | None  # None: it did not finish (timed out, could not start)
    problems: tuple[str, ...]  # what differed from the expectation; empty: passed
    stdout: str
    stderr: str
    seconds: float

    @property
    def passed(self) -> bool:
        return not self.problems

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Outcome:
        """A passed outcome as ``to_dict`` wrote it (kept in the cache)."""
        return cls(
            check=str(doc["check"]),
            command=tuple(shlex.split(str(doc["ran"]))),
            written=tuple(shlex.split(str(doc["command"]))),
            expected=str(doc["expected"]),
            exit=int(doc["exit"]),
            problems=(),
            stdout="",
            stderr="",
            seconds=float(doc["seconds"]),
        )

    def record(self) -> dict[str, Any]:
        """What the release keeps: the same for every run of the same outcome."""
        return {
            "check": self.check,
            "command": shlex.join(self.written),
            "expected": self.expected,
            "exit": self.exit,
            "passed": self.passed,
        }

    def to_dict(self) -> dict[str, Any]:
        """The record, with what differs from run to run (the command as run, seconds)."""
        doc = {**self.record(), "ran": shlex.join(self.command)}
        doc["seconds"] = round(self.seconds, 2)
        if self.problems:
            doc.update(problems=list(self.problems), stdout=self.stdout, stderr=self.stderr)
        return doc


@dataclass(frozen=True, kw_only=True)
class Run:
    where: str
    outcomes: tuple[Outcome, ...]

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outcomes)


@dataclass(frozen=True, kw_only=True)
class Seccomp:
    """What the recipe asks of the system call record: its mode and its additions."""

    mode: str = "record"  # off | record | enforce
    allow: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ProgramCalls:
    """The program's part of a staged recording and the filter made from it."""

    calls: tuple[str, ...]  # what it made beyond ALWAYS
    allowed: tuple[str, ...]
    execs: bool  # its filter lets it start programs
    forks: bool  # its filter lets it make processes (not only threads)

    def to_dict(self) -> dict[str, Any]:
        return {"calls": list(self.calls), "allowed": list(self.allowed),
                "execs": self.execs, "forks": self.forks}  # fmt: skip

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> ProgramCalls:
        return cls(
            calls=tuple(map(str, doc["calls"])),
            allowed=tuple(map(str, doc["allowed"])),
            execs=doc["execs"] is True,
            forks=doc["forks"] is True,
        )


@dataclass(frozen=True, kw_only=True)
class Syscalls:
    """The system calls the checks made the program (and its children) call on one
    architecture, and what its profile allows: those, the calls every profile keeps and
    the recipe's additions (``[hardening].seccomp_allow``) that exist on ``arch``."""

    arch: str
    calls: tuple[str, ...]
    allowed: tuple[str, ...] = ()
    recorder: str = ""  # "strace" | "qemu"
    #: the address families the checks asked socket()/socketpair() for (None: one had no
    #: name here), and the ones the profile limits socket() to (None: any family)
    families: tuple[str, ...] | None = None
    allowed_families: tuple[str, ...] | None = None
    #: an enforcing onefile binary's second filter: what the program itself (started by
    #: the bootstrap) may call; ``allowed`` above is then the bootstrap's filter
    program: ProgramCalls | None = None

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "arch": self.arch,
            "recorder": self.recorder,
            "calls": list(self.calls),
            "allowed": list(self.allowed),
            "families": None if self.families is None else list(self.families),
            "allowed_families": (
                None if self.allowed_families is None else list(self.allowed_families)
            ),
        }
        if self.program is not None:
            doc["program"] = self.program.to_dict()
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Syscalls:
        def names(key: str) -> tuple[str, ...] | None:
            value = doc.get(key)  # absent in releases made before families were recorded
            return None if value is None else tuple(map(str, value))

        return cls(
            arch=str(doc["arch"]),
            recorder=str(doc["recorder"]),
            calls=tuple(map(str, doc["calls"])),
            allowed=tuple(map(str, doc["allowed"])),
            families=names("families"),
            allowed_families=names("allowed_families"),
            program=ProgramCalls.from_dict(doc["program"]) if doc.get("program") else None,
        )

    def program_profile(self) -> Profile | None:
        """The program's own filter (None when the calls were not recorded in stages)."""
        from ..seccomp import Profile

        if self.program is None:
            return None
        return Profile(
            arch=self.arch,
            calls=self.program.allowed,
            recorded=self.program.calls,
            sources=(),
            families=self.allowed_families,
            threads_only=not self.program.forks,
        )

    def profile(self, sources: tuple[str, ...]) -> Profile:
        """The profile these calls allow."""
        from ..seccomp import Profile

        return Profile(
            arch=self.arch,
            calls=self.allowed,
            recorded=self.calls,
            sources=sources,
            families=self.allowed_families,
        )


@dataclass(frozen=True, kw_only=True)
class ArtifactChecks:
    artifact: str
    runs: tuple[Run, ...]
    not_run: str = ""  # why no check could run for it (then runs is empty)
    reused: bool = False  # the same bytes passed the same checks in the same places before
    syscalls: Syscalls | None = None  # what the checks made the program call, when recorded

    @property
    def status(self) -> str:
        if not self.runs:
            return "not-run"
        return "passed" if all(r.passed for r in self.runs) else "failed"

    def record(self) -> dict[str, Any]:
        """What manifest.json and the provenance keep: no timings, no ports, nothing that
        differs between two runs of the same build (the release folder stays reproducible)."""
        doc: dict[str, Any] = {"status": self.status}
        if self.not_run:
            doc["not_run"] = self.not_run
        doc["runs"] = [
            {"where": r.where, "results": [o.record() for o in r.outcomes]} for r in self.runs
        ]
        if self.syscalls is not None:
            doc["syscalls"] = self.syscalls.to_dict()
        return doc

    def to_dict(self) -> dict[str, Any]:
        """The record with the run's details (``build --json``, the cache)."""
        doc = self.record()
        if self.reused:
            doc["reused"] = True
        doc["runs"] = [
            {"where": r.where, "results": [o.to_dict() for o in r.outcomes]} for r in self.runs
        ]
        return doc


class ChecksFailed(CheckFailed):
    def __init__(self, message: str, *, hint: str, results: dict[str, ArtifactChecks]) -> None:
        super().__init__(message, hint=hint)
        self.results = results


class Place(Protocol):
    @property
    def where(self) -> str: ...

    def run(
        self,
        program: Path,
        args: Sequence[str],
        check: Check,
        folder: Path,
        *,
        stdin: Path | None,
        streams: tuple[Path, Path],
        calls: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run the program with ``args`` in ``folder``; its stdout and stderr go to the two
        ``streams`` files; with ``calls`` (a folder), its system calls are logged there."""
        ...

    @property
    def recorder(self) -> str:
        """How this place records system calls ("strace", "qemu"), or "" when it cannot."""
        ...

    def inside(self, folder: Path) -> str:
        """The path under which the program sees ``folder`` (its working folder)."""
        ...


@dataclass(frozen=True, kw_only=True)
class Local:
    """This machine, and a private home; for a zipapp, ``python`` the only Python on
    ``PATH`` (a folder ``bin`` of this machine's programs with that one Python, made at
    the first run)."""

    where: str
    home: Path
    python: Path | None = None
    bin: Path | None = None

    def inside(self, folder: Path) -> str:
        return str(folder)

    @property
    def recorder(self) -> str:
        if os.environ.get(EMULATED_ENV) == "qemu":
            return "qemu"  # a build inside an emulated builder: ptrace is not emulated
        return "strace" if shutil.which("strace") else ""

    def run(
        self,
        program: Path,
        args: Sequence[str],
        check: Check,
        folder: Path,
        *,
        stdin: Path | None,
        streams: tuple[Path, Path],
        calls: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        env = {"HOME": str(self.home), "TMPDIR": str(self.home / "tmp"), **dict(check.env)}
        if self.python is not None and self.bin is not None:
            if not self.bin.exists():
                python_bin(self.python, self.bin)
            env["PATH"] = str(self.bin)
        argv: list[str | Path] = [program, *args]
        if self.recorder == "qemu":  # see Emulated.run
            env["BUILDKIT_SECCOMP_UNAVAILABLE"] = "run"
        if calls is not None and self.recorder == "qemu":
            env |= _qemu_log(calls, calls)
        elif calls is not None:  # every process of the tree (-f), no exit notices (-qq)
            log_file = calls / f"strace.{len(list(calls.iterdir()))}"
            argv = [str(shutil.which("strace")), "-f", "-qq", "-o", log_file, "--", *argv]
        return tools.run(
            argv,
            what=f"check {check.name!r}",
            env=env,
            cwd=folder,
            stdin=stdin,
            check=False,
            timeout=check.timeout,
            to_files=streams,
        )


@dataclass(frozen=True, kw_only=True)
class Emulated:
    """An emulated host: a throw-away overlay per run, the working folder and a home
    (kept between the checks of one artifact, as a real user's is) bound in."""

    where: str
    host: Any  # hosts.store.Host (imported lazily: hosts pull in more than checks need)
    home: Path

    def inside(self, folder: Path) -> str:
        return f"{INSIDE}/work"

    @property
    def recorder(self) -> str:
        return "qemu" if self.host.spec.qemu else ""

    def run(
        self,
        program: Path,
        args: Sequence[str],
        check: Check,
        folder: Path,
        *,
        stdin: Path | None,
        streams: tuple[Path, Path],
        calls: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        from ..hosts.store import run_in

        exe = f"{INSIDE}/{program.name}"
        binds = [
            (program, exe, True),
            (folder, f"{INSIDE}/work", False),
            (self.home, f"{INSIDE}/home", False),
        ]
        env = {"HOME": f"{INSIDE}/home", **dict(check.env)}
        if self.host.spec.qemu:
            # QEMU's user mode implements neither seccomp() nor PR_SET_SECCOMP: a binary
            # with a filter of its own would refuse to start (onefile_seccomp.c)
            env["BUILDKIT_SECCOMP_UNAVAILABLE"] = "run"
        if calls is not None and self.recorder:
            # in a folder that outlives the overlay
            binds.append((calls, f"{INSIDE}/calls", False))
            env |= _qemu_log(calls, Path(f"{INSIDE}/calls"))
        return run_in(
            self.host,
            [exe, *args],
            binds=binds,
            env=env,
            cwd=f"{INSIDE}/work",
            capture=True,
            timeout=check.timeout * EMULATED_SLOWDOWN,
            stdin=stdin,
            to_files=streams,
        )


def _qemu_log(calls: Path, seen_as: Path) -> dict[str, str]:
    """QEMU logs the guest's calls; each emulated process (every exec starts one) to a
    file of its own (%d: its pid), named after the run (``seen_as``: the folder ``calls``
    as the program sees it)."""
    run = len(list(calls.iterdir()))
    return {"QEMU_LOG": "strace", "QEMU_LOG_FILENAME": f"{seen_as}/q{run}.%d"}


def _tail(text: str) -> str:
    return text if len(text) <= KEEP else "…" + text[-KEEP:]


def judge(check: Check, code: int, stdout: str, stderr: str) -> tuple[str, ...]:
    """What differs between a finished run and what ``check`` expects."""
    problems = []
    if code != check.exit:
        problems.append(f"exit {code}, expected {check.exit}")
    for stream, text in (("stdout", stdout), ("stderr", stderr)):
        want = getattr(check, stream)
        if want and want not in text:
            problems.append(f"{stream} does not contain {want!r}")
        pattern = getattr(check, f"{stream}_regex")
        if pattern and not re.search(pattern, text, re.MULTILINE):
            problems.append(f"{stream} does not match /{pattern}/")
    return tuple(problems)


def run_one(  # noqa: PLR0917
    place: Place, program: Path, name: str, check: Check, work: Path, calls: Path | None = None
) -> Outcome:
    folder = work / "work"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    fixtures.write_files(check, folder)
    stdin = None
    if check.stdin:
        stdin = work / "stdin"
        stdin.write_text(check.stdin, encoding="utf-8")
    streams = (work / "stdout", work / "stderr")
    started = time.monotonic()
    with fixtures.serving(check, place.inside(folder)) as values:
        args = [fixtures.expand(a, values) for a in check.args]
        try:
            proc = place.run(
                program, args, check, folder, stdin=stdin, streams=streams, calls=calls
            )
        except BuildkitError as exc:  # timed out, or could not start at all
            return Outcome(
                check=check.name,
                command=(name, *args),
                written=(name, *check.args),
                expected=check.expected(),
                exit=None,
                problems=(exc.message,),
                stdout="",
                stderr="",
                seconds=time.monotonic() - started,
            )
    seconds = time.monotonic() - started
    (stdout, out_over), (stderr, err_over) = (read_output(path) for path in streams)
    too_long = tuple(
        f"{stream} is {size} bytes, more than the {READ_AT_MOST} a check reads (judged on "
        "its start; a check's command should print less)"
        for stream, size in (("stdout", out_over), ("stderr", err_over))
        if size
    )
    return Outcome(
        check=check.name,
        command=(name, *args),
        written=(name, *check.args),
        expected=check.expected(),
        exit=proc.returncode,
        problems=too_long + judge(check, proc.returncode, stdout, stderr),
        stdout=_tail(stdout),
        stderr=_tail(stderr),
        seconds=seconds,
    )


def read_output(path: Path) -> tuple[str, int]:
    """A stream's text, at most :data:`READ_AT_MOST` bytes of it, and its size when it
    was longer (0 otherwise)."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            data = f.read(READ_AT_MOST)
    except FileNotFoundError:
        return "", 0
    return data.decode("utf-8", errors="replace"), size if size > READ_AT_MOST else 0


def _program(path: Path, record: ArtifactRecord, work: Path) -> Path:
    """The file to start, as a user has it after download and ``chmod +x``: a copy of the
    artifact, or the program inside a standalone archive."""
    if not record.name.endswith(".tar.gz"):
        copy = work / record.name
        shutil.copyfile(path, copy)
        copy.chmod(0o755)
        return copy
    root = record.name.removesuffix(".tar.gz")
    dest = work / "unpacked"
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    with tarfile.open(path) as tar:
        tar.extractall(dest, filter="data")
    return dest / root / root


def python_bin(python: Path, folder: Path) -> Path:
    """A folder of the host's programs in which the only Python is ``python``."""
    folder.mkdir(parents=True)
    seen = set()
    for entry in ("/usr/local/bin", "/usr/bin", "/bin"):
        base = Path(entry)
        if not base.is_dir():
            continue
        for tool in sorted(base.iterdir()):
            if tool.name in seen or re.match(r"(python|pip|pydoc|idle|2to3)", tool.name):
                continue
            seen.add(tool.name)
            (folder / tool.name).symlink_to(tool)
    version = re.search(r"python(3\.\d+)$", python.name)
    names = ["python3", "python"] + ([python.name] if version else [])
    for name in names:
        (folder / name).symlink_to(python)
    return folder


def _describe_machine() -> str:
    libc, libc_version = platform.libc_ver()
    if libc != "glibc" and glob.glob("/lib/ld-musl-*.so.1"):
        libc = "musl"  # platform.libc_ver() knows glibc only (on musl it says "libc")
    return f"{platform.system().lower()} {platform.machine()}, {libc} {libc_version}".rstrip()


def _machine() -> str:
    return f"this machine ({_describe_machine()})"


#: The emulated hosts one run of the checks has looked at: the host, or why it cannot be
#: used (checking a host starts its interpreter under QEMU: once per run, not per artifact).
HostsSeen = dict[str, tuple[Any, str]]


def places(
    record: ArtifactRecord, cache: Cache, work: Path, seen: HostsSeen | None = None
) -> tuple[list[Place], str]:
    """Where ``record``'s artifact can run here, or ([], why it cannot)."""
    target = targets.get(record.target)
    home = work / "home"
    (home / "tmp").mkdir(parents=True, mode=0o700)
    home.chmod(0o700)
    if target.is_host():
        if record.format == "nuitka":
            old = _older_glibc(target, cache, home, {} if seen is None else seen)
            return [Local(where=_machine(), home=home), *old], ""
        versions = [record.python]
        wheels = [str(w).split(" ")[0] for w in record.inputs.get("wheels", [])]
        if record.format == "pex" and pythons.open_ended(wheels, record.python):
            versions += pythons.newer(record.python)
        found = pythons.available(versions)
        if record.python not in found:
            return [], (
                f"no python{record.python} on this machine to run a {record.format} zipapp "
                f"built for Python {record.python} (install one: the checks run it as ops "
                "staff would)"
            )
        return [
            Local(
                where=f"{_machine()} with Python {v} ({path})",
                home=home,
                python=path,
                bin=work / f"bin-{v}",
            )
            for v, path in found.items()
        ], ""
    return _emulated(record, target, cache, home, {} if seen is None else seen)


def _use(spec: Any, cache: Cache, seen: HostsSeen) -> tuple[Any, str]:
    from ..hosts import store

    if spec.name not in seen:
        try:
            seen[spec.name] = (store.use(spec, cache), "")
        except BuildkitError as exc:
            seen[spec.name] = (None, f"the emulated host {spec.name} cannot be used: {exc.message}")
    return seen[spec.name]


def _older_glibc(target: targets.Target, cache: Cache, home: Path, seen: HostsSeen) -> list[Place]:
    """The roots of older glibc systems made here for ``target`` (none made: none)."""
    from .. import hosts
    from ..hosts import store

    found: list[Place] = []
    for spec in hosts.all_hosts().values():
        if spec.target != target.name or not spec.oldest_glibc:
            continue
        if not store.location(spec, cache).folder.exists():
            log.info(
                "checks: the %s root is not made here; native binaries run on this machine "
                "only (make it: buildkit host create %s)",
                spec.name,
                spec.name,
            )
            continue
        if os.geteuid() != 0:
            log.info("checks: not root, so not in the %s root (it needs chroot)", spec.name)
            continue
        host, why = _use(spec, cache, seen)
        if host is None:
            raise CheckFailed(why, hint=f"make it again: buildkit host create {spec.name} --force")
        found.append(
            Emulated(where=f"root {spec.name} (Debian {spec.suite})", host=host, home=home)
        )
    return found


def _emulated(
    record: ArtifactRecord, target: targets.Target, cache: Cache, home: Path, seen: HostsSeen
) -> tuple[list[Place], str]:
    from .. import hosts
    from ..hosts import store

    specs = [
        s for s in hosts.all_hosts().values() if s.target == target.name and not s.oldest_glibc
    ]
    if not specs:
        return [], (
            f"no {target.name} host here (this machine: {_describe_machine()}); only the "
            "static checks stand for it (the audit of its binaries and the wheel tags)"
        )
    spec = specs[0]
    if not store.location(spec, cache).folder.exists():
        return [], (
            f"the emulated host {spec.name} is not created here "
            f"(make it once with `buildkit host create {spec.name}`, as root)"
        )
    if record.format != "nuitka" and record.python != spec.python_version:
        return [], (
            f"the emulated host {spec.name} has Python {spec.python_version}; the artifact "
            f"is built for {record.python}"
        )
    host, why = _use(spec, cache, seen)
    if host is None:
        return [], why
    where = f"emulated host {spec.name} ({target.name} under QEMU {spec.qemu})"
    return [Emulated(where=where, host=host, home=home)], ""


def check_artifact(
    path: Path,
    record: ArtifactRecord,
    checks: Sequence[Check],
    cache: Cache,
    work: Path,
    *,
    seen: HostsSeen | None = None,
    seccomp: Seccomp | None = None,
) -> ArtifactChecks:
    """Run ``checks`` against the artifact in every place it runs here; with ``seccomp``
    (not "off"), record the system calls they make (see :mod:`buildkit.seccomp`)."""
    work.mkdir(parents=True, exist_ok=True)
    checks = [c for c in checks if c.applies_to(record.target)]
    if not checks:
        return ArtifactChecks(
            artifact=record.name,
            runs=(),
            not_run=f"none of the recipe's checks is for {record.target} (their targets key)",
        )
    found, why = places(record, cache, work, seen)
    if not found:
        return ArtifactChecks(artifact=record.name, runs=(), not_run=why)
    target = targets.get(record.target)
    recording = seccomp is not None and seccomp.mode != "off" and target.os == "linux"
    if recording and not _can_name_calls():
        recording = False
    key = _proof_key(record, checks, found, seccomp if recording else None)
    if (kept := _reuse(cache.lookup_proof(key), record.name)) is not None:
        return kept
    program = _program(path, record, work)
    own = record.inputs.get("settings", {}).get("seccomp")  # the artifact's own filter
    filtered = own in ("slot", "boot")
    runs = []
    logs: dict[str, list[Path]] = {}
    for index, place in enumerate(found):
        calls = None
        if recording and place.recorder:
            calls = work / f"calls-{index}"
            calls.mkdir()
            logs.setdefault(place.recorder, []).append(calls)
        outcomes = tuple(run_one(place, program, record.name, c, work, calls) for c in checks)
        where = place.where
        if filtered and place.recorder == "qemu":
            where += f" ({UNFILTERED})"
        runs.append(Run(where=where, outcomes=outcomes))
    syscalls = None
    if recording and seccomp is not None:
        split = {"slot": "exec", "boot": "marker"}.get(str(own), "")
        syscalls = _recorded(target.arch, logs, seccomp, split=split)
    result = ArtifactChecks(artifact=record.name, runs=tuple(runs), syscalls=syscalls)
    if result.status == "passed":
        cache.store_proof(key, result.to_dict())
    return result


@functools.cache
def _can_name_calls() -> bool:
    from ..seccomp import libseccomp

    if libseccomp.available():
        return True
    log.warning(
        "checks: system calls are not recorded: libseccomp (which names them) is not "
        "installed here; the release gets no seccomp profile (apt-get install libseccomp2, "
        "apk add libseccomp)"
    )
    return False


def _recorded(
    arch: str, logs: dict[str, list[Path]], seccomp: Seccomp, *, split: str = ""
) -> Syscalls | None:
    """The calls in the logs of every place that recorded; None when none could. With
    ``split`` (an enforcing artifact: "exec" for a onefile binary, "marker" for a zipapp),
    also the program's own part and its filter
    (see :mod:`buildkit.seccomp.record`); the bootstrap's filter then allows the calls
    that install the program's."""
    from .. import seccomp as policy
    from ..seccomp import record as recorder

    if not logs:
        log.warning(
            "checks: the system calls on %s were not recorded: no place the checks ran in "
            "records them (strace is not installed here?); the release gets no seccomp "
            "profile for it (apt-get install strace)",
            arch,
        )
        return None
    calls: set[str] = set()
    program: set[str] = set()
    execs = forks = False
    families: set[str] | None = set()
    for how, folders in sorted(logs.items()):
        files = [f for folder in folders for f in folder.iterdir()]
        made = recorder.recorded(arch, how, files, split=split)
        calls |= made.calls
        program |= made.program
        execs, forks = execs or made.execs, forks or made.forks
        asked = made.families
        families = None if asked is None or families is None else families | asked
    extra = (*seccomp.allow, *policy.INSTALL) if split else seccomp.allow
    profile = policy.make(arch, {"checks": calls}, extra, families=families)
    own = None
    if split:
        mine = policy.make_program(arch, program, seccomp.allow, execs=execs, forks=forks,
                                   families=profile.families)  # fmt: skip
        own = ProgramCalls(calls=mine.recorded, allowed=mine.calls, execs=mine.may_exec(),
                           forks=not mine.threads_only)  # fmt: skip
    return Syscalls(
        arch=arch,
        calls=profile.recorded,
        allowed=profile.calls,
        recorder="+".join(sorted(logs)),
        families=None if families is None else tuple(sorted(families)),
        allowed_families=profile.families,
        program=own,
    )


def _proof_key(
    record: ArtifactRecord,
    checks: Sequence[Check],
    found: Sequence[Place],
    seccomp: Seccomp | None = None,
) -> str:
    """What decides a check's outcome: the artifact's bytes, the checks, where they run
    (the interpreter's path and version, the emulated host), buildkit's own code and, when
    the calls are recorded, the recipe's additions."""
    from ..build import toolkit_digest

    doc = {
        "v": 2,
        "seccomp": None if seccomp is None else list(seccomp.allow),
        "artifact": record.sha256,
        "checks": [dataclasses.asdict(c) for c in checks],
        "places": [p.where for p in found],
        "pythons": [_stat(p) for p in found],
        "toolkit": toolkit_digest(),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _stat(place: Place) -> list[int]:
    """Size and mtime of the interpreter a zipapp runs under (an upgrade in place)."""
    python = getattr(place, "python", None)
    if python is None:
        return []
    st = python.stat()
    return [st.st_size, st.st_mtime_ns]


def _reuse(doc: dict[str, Any] | None, name: str) -> ArtifactChecks | None:
    if doc is None or doc.get("status") != "passed":
        return None
    try:
        runs = tuple(
            Run(where=str(r["where"]), outcomes=tuple(Outcome.from_dict(o) for o in r["results"]))
            for r in doc["runs"]
        )
        syscalls = Syscalls.from_dict(doc["syscalls"]) if "syscalls" in doc else None
    except (KeyError, TypeError, ValueError):
        return None
    return ArtifactChecks(artifact=name, runs=runs, reused=True, syscalls=syscalls)


def plain_temp_dir() -> Path:
    """A fresh private folder for the checks' homes, on a path without blanks: pex puts
    its venv's path in a shebang line, which cannot hold one (a cache folder named
    ``build tree`` would fail every pex check, as would such a home for a real user)."""
    base = tempfile.gettempdir()
    if any(c.isspace() for c in base):
        base = "/tmp"
    return Path(tempfile.mkdtemp(prefix="buildkit-checks-", dir=base))


def run_checks(
    built: Sequence[tuple[Path, ArtifactRecord]],
    checks: Sequence[Check],
    cache: Cache,
    work: Path,
    *,
    recipe_path: Path,
    seccomp: Seccomp | None = None,
) -> dict[str, ArtifactChecks]:
    """The checks' results by artifact name; raises :class:`ChecksFailed` when any failed.
    ``work``: a folder for the runs (see :func:`plain_temp_dir`)."""
    results: dict[str, ArtifactChecks] = {}
    seen: HostsSeen = {}
    total = len(built)
    for index, (path, record) in enumerate(built, 1):
        result = check_artifact(
            path, record, checks, cache, work / str(index), seen=seen, seccomp=seccomp
        )
        results[record.name] = result
        if result.not_run:
            log.warning("checks not run for %s: %s", record.name, result.not_run)
        log.info(
            "%s: checks %s",
            record.name,
            f"{result.status}{' (before, on these bytes)' if result.reused else ''} ("
            + "; ".join(f"{len(r.outcomes)} on {r.where}" for r in result.runs)
            + ")"
            if result.runs
            else "not run here",
            extra={"progress": (index, total), "step": "check"},
        )
        shutil.rmtree(work / str(index), ignore_errors=True)
    failed = [r for r in results.values() if r.status == "failed"]
    if failed:
        kept = {record.name: path for path, record in built}
        raise ChecksFailed(
            describe(failed, kept),
            hint=f"fix the program, or what the check expects in {recipe_path} [[checks]]; "
            "nothing was published",
            results=results,
        )
    return results


def describe(failed: Sequence[ArtifactChecks], kept: Mapping[str, Path] | None = None) -> str:
    """The failures, each with the command, what was expected and what happened, and
    where the rejected artifact is kept (``kept``: its path by name) to run it by hand."""
    count = sum(1 for a in failed for r in a.runs for o in r.outcomes if not o.passed)
    lines = [f"{count} check(s) failed on {len(failed)} artifact(s):"]
    for artifact in failed:
        if kept and artifact.artifact in kept:
            lines.append(
                f"  {artifact.artifact}: rejected; kept at {kept[artifact.artifact]} "
                "(copy it under its name and chmod +x to run and inspect it)"
            )
        for run in artifact.runs:
            for o in run.outcomes:
                if o.passed:
                    continue
                lines.append(f"  {artifact.artifact}: check {o.check!r} on {run.where}")
                lines.append(f"    command:  {shlex.join(o.command)}")
                lines.append(f"    expected: {o.expected}")
                lines.append(f"    got:      {'; '.join(o.problems)}")
                for stream in ("stdout", "stderr"):
                    text = getattr(o, stream).strip()
                    if text:
                        shown = text.splitlines()[-8:]
                        lines.append(f"    {stream}:")
                        lines.extend(f"      {line}" for line in shown)
    return "\n".join(lines)


def summary(results: dict[str, ArtifactChecks]) -> str:
    """One line: how many artifacts passed, and which could not be checked here."""
    passed = [n for n, r in results.items() if r.status == "passed"]
    not_run = [n for n, r in results.items() if r.status == "not-run"]
    text = f"checks passed for {len(passed)} of {len(results)} artifact(s)"
    if not_run:
        text += "; not run here: " + ", ".join(not_run)
    return text
