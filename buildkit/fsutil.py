"""Small file-system helpers: atomic writes, digests, errors that name the folder."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import OutputError

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


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


@contextlib.contextmanager
def atomic_path(dest: Path, mode: int = 0o644) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; rename it over ``dest`` on success only."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with output_errors(dest.parent):
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
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
