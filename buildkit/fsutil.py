"""Small file-system helpers: atomic writes, digests, errors that name the folder."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import stat
import tempfile
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import OutputError

log = logging.getLogger(__name__)

_CHUNK = 1 << 20

# What opening or reading a damaged or hostile zip can raise: bad headers, short data,
# bad deflate streams, zip versions, compression methods or encryption Python does not
# support (found by the hypothesis tests of mutated zipapps).
ZIP_ERRORS = (
    zipfile.BadZipFile, OSError, ValueError, EOFError, zlib.error, NotImplementedError,
    RuntimeError, IndexError,
)  # fmt: skip


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def folder_digest(root: Path, *, skip: frozenset[str] = frozenset()) -> str:
    """A digest of a folder's whole tree: every name, kind and permission bits, each
    file's bytes and each link's target (links are not followed); files named in
    ``skip`` are left out wherever they are. Raises OSError when the folder cannot be
    read."""
    h = hashlib.sha256()
    for folder, dirs, files in os.walk(root, onerror=_raise):
        dirs.sort()
        base = Path(folder)
        for name in sorted(dirs + files):
            if name in skip:
                continue
            path = base / name
            st = os.lstat(path)
            rel = path.relative_to(root).as_posix()
            if stat.S_ISLNK(st.st_mode):
                what = "l " + os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                what = f"f {stat.S_IMODE(st.st_mode):o} {sha256_file(path)}"
            elif stat.S_ISDIR(st.st_mode):
                what = f"d {stat.S_IMODE(st.st_mode):o}"
            else:
                what = "? " + file_kind(st.st_mode)
            h.update(f"{rel}\0{what}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def _raise(exc: OSError) -> None:
    raise exc


@contextlib.contextmanager
def output_errors(folder: Path) -> Iterator[None]:
    """Turn OS errors while writing into an OutputError that names the folder."""
    try:
        yield
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise OutputError(
                f"no space left on the device holding {folder}", hint="free space and re-run"
            ) from exc
        raise OutputError(f"cannot write in {folder}: {exc.strerror or exc}") from exc


#: Temporary files of :func:`atomic_path` are named ``<PART_PREFIX><name>.<random>.part``:
#: a name no user file has, so a sweep of leftovers removes only buildkit's own.
PART_PREFIX = ".buildkit-part-"
PART_SUFFIX = ".part"


def is_part(name: str) -> bool:
    """True for the name of a temporary file :func:`atomic_path` made."""
    return name.startswith(PART_PREFIX) and name.endswith(PART_SUFFIX)


@contextlib.contextmanager
def atomic_path(dest: Path, mode: int = 0o644) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; rename it over ``dest`` on success only."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with output_errors(dest.parent):
        fd, tmp_name = tempfile.mkstemp(
            prefix=f"{PART_PREFIX}{dest.name}.", suffix=PART_SUFFIX, dir=dest.parent
        )
        os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with output_errors(dest.parent):
            os.chmod(tmp, mode)
            with tmp.open("rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(dest: Path, data: bytes, mode: int = 0o644) -> None:
    with atomic_path(dest, mode) as tmp, output_errors(dest.parent):
        tmp.write_bytes(data)


def atomic_write_text(dest: Path, text: str, mode: int = 0o644) -> None:
    atomic_write_bytes(dest, text.encode("utf-8"), mode)


def atomic_copy(src: Path, dest: Path, mode: int = 0o644) -> None:
    with atomic_path(dest, mode) as tmp, output_errors(dest.parent):
        shutil.copyfile(src, tmp)


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` itself (flock on its descriptor: no lock file
    appears in it). Concurrent writers of one release folder take turns."""
    with output_errors(folder):
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below ``path`` (from /proc/self/mountinfo; none if unreadable)."""
    try:
        lines = Path("/proc/self/mountinfo").read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    base = os.path.realpath(path)
    found = []
    for line in lines:
        fields = line.split()
        if len(fields) > 4:
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
            if point == base or point.startswith(base + "/"):
                found.append(point)
    return found


def remove_tree(path: Path) -> bool:
    """Delete ``path`` unless something is mounted inside it (deleting through a bind
    mount would delete the mounted files: /dev, /proc, a user's folder); returns whether
    it is gone."""
    if mounted := mounts_under(path):
        log.warning(
            "left %s in place: %s is mounted inside it; unmount it, then delete the folder",
            path,
            mounted[0],
        )
        return False
    shutil.rmtree(path, ignore_errors=True)
    return not path.exists()


class NotRegular(OSError):
    """A path that is not a regular file (a link, a FIFO, a device, a folder)."""


def file_kind(mode: int) -> str:
    """What a non-regular ``st_mode`` is, in words ("a FIFO", "a symbolic link")."""
    for test, name in (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def regular_kind(path: Path) -> str | None:
    """Why ``path`` is not a regular file (not following links), or None when it is.
    Raises FileNotFoundError when it is missing."""
    mode = os.lstat(path).st_mode
    return None if stat.S_ISREG(mode) else file_kind(mode)


def read_regular(path: Path, limit: int) -> bytes:
    """The bytes of ``path``, opened only if it is a regular file (no link followed, no
    FIFO or device opened, so nothing blocks) of at most ``limit`` bytes."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise NotRegular(f"{escaped(str(path))} is {file_kind(st.st_mode)}")
        if st.st_size > limit:
            raise NotRegular(f"{escaped(str(path))} is larger than {limit} bytes")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise NotRegular(f"{escaped(str(path))} is larger than {limit} bytes")
    return data


#: Values one JSON document buildkit reads from outside may hold. Real release documents
#: run at about 35 bytes a value (a 145 KB report: 5,100); parsed, a value costs 50-100
#: bytes, so a bound on values, not only on bytes, bounds memory: 64 MiB of ``[{},{},…]``
#: would be 22 million dicts, 1.5 GB.
MAX_JSON_VALUES = 1_000_000


def json_values(data: bytes) -> int:
    """An upper bound on the values a JSON document holds (commas, braces, brackets)."""
    return data.count(b",") + data.count(b"{") + data.count(b"[")


def loads_bounded(data: bytes, values: int = MAX_JSON_VALUES) -> Any:
    """``json.loads(data)``, refused with ValueError before parsing when it may hold more
    than ``values`` values (counted from commas, braces and brackets: an over-count,
    never an under-count), so memory stays proportional to ``values``."""
    count = json_values(data)
    if count > values:
        raise ValueError(f"more than {values} JSON values ({count} separators)")
    return json.loads(data)


def escaped(name: str) -> str:
    """``name`` as safe to print: control characters, backslashes and characters that
    reorder text shown as escapes (``\\n``, ``\\x1b``, ``\\u202e``), as ``ls -b`` would."""
    out = []
    for ch in name:
        if ch == "\\":
            out.append("\\\\")
        elif ch.isprintable() and unicodedata.category(ch) not in ("Cf", "Zl", "Zp"):
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return "".join(out)


def sha256_regular(path: Path) -> str:
    """sha256 of ``path``, refusing (NotRegular) anything but a regular file: a link is
    not followed, a FIFO is not waited on."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(f.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegular(f"{escaped(str(path))} is {file_kind(mode)}")
        h = hashlib.sha256()
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()
