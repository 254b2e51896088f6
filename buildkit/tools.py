"""The one place that runs external programs.

Every tool runs in a scrubbed environment (fixed locale, time zone, hash seed, umask and
SOURCE_DATE_EPOCH; only network settings pass through), its command is logged at debug
level, and a failure becomes a :class:`ToolError` that says what ran and what to do.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import IO, Any, cast

from .errors import OutputError, ToolError

log = logging.getLogger(__name__)

#: 1980-01-01T00:00:00Z, the earliest time a zip entry can carry.
SOURCE_DATE_EPOCH = "315532800"

# Variables a user sets on purpose to reach a registry: proxies, certificates, a mirror.
NETWORK = (
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "PIP_CERT",
    "PIP_INDEX_URL",
    "UV_INDEX_URL",
    "UV_DEFAULT_INDEX",
    "UV_NATIVE_TLS",
)
_PASS_THROUGH = ("PATH", "HOME", "TMPDIR", *NETWORK)


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every tool gets: a fixed base plus explicit extras."""
    env = {k: v for k in _PASS_THROUGH if (v := os.environ.get(k)) is not None}
    env.update(
        {
            "LC_ALL": "C.UTF-8",
            "LANG": "C.UTF-8",
            "TZ": "UTC",
            "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1",
            "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH,
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PIP_NO_INPUT": "1",
            "UV_NO_CONFIG": "1",
        }
    )
    if extra:
        env.update(extra)
    return env


def find_tool(name: str) -> Path:
    """A console script installed beside the running interpreter (the toolkit's venv)."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return candidate
    found = shutil.which(name)
    if found is None:
        raise ToolError(
            f"{name} is not installed beside {sys.executable}",
            hint="run ci/setup to install the toolkit's pinned tools",
        )
    return Path(found)


def run(
    cmd: Sequence[str | Path],
    *,
    what: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    hint: str | None = None,
    timeout: float | None = None,
    stdin: Path | None = None,
    check: bool = True,
    exact_env: Mapping[str, str] | None = None,
    umask: int = 0o022,
    capture: bool = True,
    heartbeat: Callable[[float, str], str] | None = None,
    to_files: tuple[Path, Path] | None = None,
    stdout_to_stderr: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` hermetically; raise :class:`ToolError` naming ``what`` on failure.

    ``stdin``: a file fed to the program's standard input. ``check=False``: a non-zero exit
    is returned to the caller (a verification that says no), not raised. ``exact_env`` and
    ``umask``: run under exactly these instead of the scrubbed ones (``repro`` varies them
    on purpose). ``capture=False``: the program shares this process's stdin, stdout and
    stderr (a program the user runs, such as ``run-on``'s), and its output is not kept.
    ``heartbeat``: a long step; its output is read as it comes (each line logged at debug
    level, so ``--verbose`` streams it), and every :data:`HEARTBEAT` seconds
    ``heartbeat(elapsed, last line)`` is logged at info level: a CI log never goes
    silent while the tool works. ``to_files``: stdout and stderr go to these two files, not
    into memory (a program under test may write without end until its timeout); the
    caller reads what it needs of them. ``stdout_to_stderr`` (with ``capture=False``): the
    program's stdout goes to this process's stderr (a nested buildkit whose report is not
    this one's: ``--json`` output stays clean)."""
    argv = [str(c) for c in cmd]
    log.debug("$ %s", shlex.join(argv))
    try:
        with (
            stdin.open("rb") if stdin else open(os.devnull, "rb") as feed,
            contextlib.ExitStack() as files,
        ):
            kwargs: dict[str, Any] = {
                "env": dict(exact_env) if exact_env is not None else clean_env(env),
                "cwd": cwd,
                "text": True,
                "stdin": feed if capture or stdin else None,
                "umask": umask,
                "preexec_fn": _die_with_parent,
            }
            if to_files is not None:
                out, err = (files.enter_context(path.open("wb")) for path in to_files)
                proc = subprocess.run(
                    argv, stdout=out, stderr=err, timeout=timeout, check=False, **kwargs
                )
            elif heartbeat is not None:
                proc = _watched(argv, kwargs, heartbeat, timeout)
            elif stdout_to_stderr and not capture:
                proc = subprocess.run(
                    argv, stdout=sys.stderr.fileno(), timeout=timeout, check=False, **kwargs
                )
            else:
                proc = subprocess.run(
                    argv, capture_output=capture, timeout=timeout, check=False, **kwargs
                )
    except FileNotFoundError as exc:
        raise ToolError(
            f"{what}: {argv[0]} not found", hint=hint or "run ci/setup to install the toolkit"
        ) from exc
    except OSError as exc:  # not executable, not a program for this machine
        raise ToolError(
            f"{what}: cannot start {argv[0]}: {exc.strerror}",
            hint=hint or "check that the file is a program for this machine and executable",
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise ToolError(
            f"{what}: {argv[0]} did not finish within {timeout:.0f} s; it was stopped",
            hint=hint,
        ) from exc
    if proc.returncode != 0 and check:
        if full := _no_space(proc):
            raise OutputError(
                f"{what}: {full}",
                hint="free space there (or point --cache-dir or --out at a bigger disk) "
                "and re-run; nothing half-written was kept",
            )
        raise ToolError(
            f"{what} failed (exit {proc.returncode}): {shlex.join(argv)}\n{output_tail(proc)}",
            hint=hint or "re-run with --verbose to see every command",
        )
    return proc


#: Seconds between two heartbeat lines of a long step.
HEARTBEAT = 30.0


def _watched(
    argv: list[str],
    kwargs: dict[str, Any],
    heartbeat: Callable[[float, str], str],
    timeout: float | None,
) -> subprocess.CompletedProcess[str]:
    """``subprocess.run`` with the output read line by line while a heartbeat ticks."""
    started = time.monotonic()
    streams: dict[str, list[str]] = {"stdout": [], "stderr": []}
    last = [""]

    def read(name: str, pipe: IO[str]) -> None:
        for line in pipe:
            streams[name].append(line)
            if line.strip():
                last[0] = line.strip()
                log.debug("%s", line.rstrip())

    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs) as child:
        assert child.stdout is not None and child.stderr is not None
        readers = [
            threading.Thread(target=read, args=(name, pipe), daemon=True)
            for name, pipe in (("stdout", child.stdout), ("stderr", child.stderr))
        ]
        for reader in readers:
            reader.start()
        beat = started + HEARTBEAT
        while True:
            try:
                child.wait(timeout=max(0.1, min(beat - time.monotonic(), 5.0)))
                break
            except subprocess.TimeoutExpired:
                now = time.monotonic()
                if timeout is not None and now - started > timeout:
                    child.kill()
                    child.wait()
                    raise subprocess.TimeoutExpired(argv, timeout) from None
                if now >= beat:
                    log.info("%s", heartbeat(now - started, last[0]))
                    beat = now + HEARTBEAT
        for reader in readers:
            reader.join()
    return subprocess.CompletedProcess(
        argv, child.returncode, "".join(streams["stdout"]), "".join(streams["stderr"])
    )


def _load_prctl() -> Callable[[int, int], int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return cast(Callable[[int, int], int], libc.prctl)
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl() if sys.platform == "linux" else None
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: get SIGKILL when buildkit dies, even by SIGKILL (which
    no handler sees), so a killed build leaves no tool writing on in the background."""
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL)


# What pip (urllib3), uv (reqwest) and the OS say when a registry cannot be reached.
_NETWORK = re.compile(
    r"NameResolutionError|Temporary failure in name resolution|Name or service not known"
    r"|dns error|Failed to establish a new connection|Network is unreachable"
    r"|Connection refused|ConnectTimeoutError|ProxyError|Read timed out|timed out"
    r"|client error \\(Connect\\)|No route to host|Connection reset by peer"
    r"|IncompleteRead|Connection broken|Connection interrupted|not enough bytes were received"
)


def network_failure(text: str) -> str | None:
    """The line of a tool's output that says the network failed, or None."""
    lines = [line.strip() for line in text.splitlines() if _NETWORK.search(line)]
    if not lines:
        return None
    return re.sub(r"^(WARNING: Retrying \(Retry\([^)]*\)\) after |\u00d7 )", "", lines[-1])


_NO_SPACE = ("No space left on device", "ENOSPC", "Disk quota exceeded")


def _no_space(proc: subprocess.CompletedProcess[str]) -> str | None:
    """For a tool that failed on a full disk: which folder, as its output names it."""
    text = (proc.stderr or "") + (proc.stdout or "")
    lines = [line for line in text.splitlines() if any(m in line for m in _NO_SPACE)]
    if not lines:
        return None
    found = []  # (free bytes, size, folder) of each folder the line names
    for raw in re.findall(r"(/[^'\"\s:]+)", lines[-1]):
        folder = Path(raw)
        while not folder.is_dir() and folder != folder.parent:
            folder = folder.parent
        try:
            st = os.statvfs(folder)
        except OSError:
            continue
        found.append((st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize, str(folder)))
    if found:  # the full one: the least free space
        free, size, where = min(found)
        return (
            f"no space left on the device holding {where} "
            f"({free // 1024} KiB free of {size // 1024} KiB)"
        )
    return f"no space left on a device: {lines[-1].strip()}"


def output_tail(proc: subprocess.CompletedProcess[str], lines: int = 25) -> str:
    """The end of the output, stderr last: that is where a failing build says why."""
    out = (proc.stdout or "").strip().splitlines()[-(lines // 3) :]
    err = (proc.stderr or "").strip().splitlines()[-lines:]
    return "\n".join("  " + line for line in [*out, *err][-lines:])


@cache
def tool_version(name: str) -> str:
    """Version of an installed Python distribution (the pinned tool), without running it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError as exc:
        raise ToolError(f"{name} is not installed", hint="run ci/setup") from exc
