"""Pinned downloads (source tarballs, Debian packages) kept in the cache by their digest.

``downloads/<aa>/<sha256>/<file name>``: fetched into the cache's ``tmp/``, checked against
the pinned sha256, then renamed into place; a cached file is checked again before use.
Checked and then opened again by path, a cached file could be swapped in between by
whoever can write the cache, so ``fetch`` hands out a private copy (in ``into``, else in a
folder of this process's in the cache's ``tmp/``, removed when it exits), hashed after
copying: the bytes checked are the bytes unpacked.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..cache import Cache
from ..errors import IntegrityError, ToolError
from ..fsutil import output_errors, sha256_file
from . import Source

log = logging.getLogger(__name__)

ATTEMPTS = 3
TIMEOUT = 60.0


def fetch(source: Source, cache: Cache, *, into: Path | None = None) -> Path:
    """A private copy of ``source`` whose bytes were checked after copying, in ``into``
    (a folder of the caller's) or in this process's copies folder."""
    into = into if into is not None else _copies(cache)
    filename = source.url.rsplit("/", 1)[-1]
    final = cache.download(source.sha256, filename)
    if final.is_file():
        if (copy := _checked_copy(final, source, into)) is not None:
            return copy
        log.warning("cached %s does not match its pinned sha256; fetching it again", final)
        shutil.rmtree(final.parent, ignore_errors=True)
    staging = cache.tmp_dir()
    try:
        part = staging / filename
        _download(source.url, part)
        got = sha256_file(part)
        if got != source.sha256:
            raise IntegrityError(
                f"{source.url}: sha256 {got}, pinned {source.sha256} ({source.what})",
                hint="the download is not the pinned file; nothing was kept",
            )
        with output_errors(into):
            into.mkdir(parents=True, exist_ok=True, mode=0o700)
            shutil.copyfile(part, into / filename)
        with output_errors(final.parent.parent):
            final.parent.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(OSError):  # a concurrent fetch may have finished first
                os.rename(staging, final.parent)
        if not final.is_file():
            raise ToolError(f"cannot keep {filename} in {final.parent}", hint="check the cache")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return into / filename


#: This process's folder of private copies, per cache root.
_COPIES: dict[Path, Path] = {}


def _copies(cache: Cache) -> Path:
    if cache.root not in _COPIES:
        folder = cache.tmp_dir("sources-")
        _COPIES[cache.root] = folder
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return _COPIES[cache.root]


def _checked_copy(cached: Path, source: Source, into: Path) -> Path | None:
    """A copy of ``cached`` in ``into`` when its bytes, read there, match the pin."""
    copy = into / cached.name
    with output_errors(into):
        into.mkdir(parents=True, exist_ok=True, mode=0o700)
        shutil.copyfile(cached, copy)
    if sha256_file(copy) == source.sha256:
        return copy
    copy.unlink()
    return None


def _download(url: str, dest: Path) -> None:
    log.info("fetching %s", url, extra={"step": "host"})
    delay = 2.0
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with urllib.request.urlopen(url, timeout=TIMEOUT) as response, dest.open("wb") as f:
                shutil.copyfileobj(response, f, 1 << 20)
            return
        except (urllib.error.URLError, OSError) as exc:
            if attempt == ATTEMPTS:
                raise ToolError(
                    f"cannot fetch {url}: {exc} ({ATTEMPTS} attempts)",
                    hint="check the network or a proxy (https_proxy); the file is pinned by "
                    "sha256, so a mirror serving the same bytes works too",
                ) from exc
            log.warning("fetching %s failed (%s); retrying in %.0f s", url, exc, delay)
            time.sleep(delay)
            delay *= 2
