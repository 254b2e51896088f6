"""The key that authenticates what buildkit reuses from its cache.

Anyone who can write a cache can write any file in it: another user on a shared machine,
or, in CI, the job of another branch whose cache is restored into this one. So what
decides an artifact's bytes or its proof (an action entry, a check result, "built here")
is reused only when it carries a seal (HMAC-SHA256) made with a key kept *outside* the
cache; a forged or foreign entry is a miss, with a warning, never a hit.

The key is, in order:

1. ``$BUILDKIT_CACHE_KEY``: a secret of at least 32 characters (a CI secret; every job of
   one trust domain shares it, so their caches are reused);
2. the key file ``$XDG_CONFIG_HOME/buildkit/cache.key`` (``~/.config/buildkit/``),
   made on first use: 32 random bytes, mode 0600 in a 0700 folder. It must be a regular
   file owned by this user and readable by nobody else;
3. when neither can be had (no writable home, a key file others can read): a key for this
   run only. Nothing is reused, and a warning says why and what to do.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import json
import logging
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError

log = logging.getLogger(__name__)

ENV = "BUILDKIT_CACHE_KEY"
MIN_SECRET = 32
FILENAME = "cache.key"


@dataclass(frozen=True, kw_only=True)
class CacheKey:
    secret: bytes = field(repr=False)
    source: str  # where it came from, for messages
    lasting: bool  # False: made for this run only, so nothing sealed before opens

    def seal(self, kind: str, doc: Any) -> str:
        """The seal of ``doc`` (JSON-able) as a ``kind`` of cache entry."""
        body = kind.encode() + b"\0" + json.dumps(doc, sort_keys=True).encode()
        return hmac.new(self.secret, body, hashlib.sha256).hexdigest()

    def opens(self, kind: str, doc: Any, seal: object) -> bool:
        """Whether ``seal`` was made by this key for ``doc``."""
        return isinstance(seal, str) and hmac.compare_digest(seal, self.seal(kind, doc))

    def env(self) -> dict[str, str]:
        """The environment that gives a build inside an emulated host the same key."""
        return {ENV: self.secret.decode("ascii")}


def key_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "buildkit" / FILENAME


def load(cache_root: Path) -> CacheKey:
    """The key for the cache at ``cache_root`` (see the module's docstring)."""
    if (env := os.environ.get(ENV)) is not None:
        if len(env) < MIN_SECRET or not env.isascii() or not env.isprintable():
            raise InputError(
                f"${ENV} must be at least {MIN_SECRET} printable ASCII characters "
                f"(it has {len(env)})",
                hint="set it from a CI secret made with `openssl rand -hex 32`, or unset it "
                f"to use the key file {key_path()}",
            )
        return CacheKey(secret=env.encode("ascii"), source=f"${ENV}", lasting=True)
    path = key_path()
    try:
        if path.resolve().is_relative_to(cache_root.resolve()):
            raise _Unusable(f"it lies inside the cache {cache_root}")
        secret = _read_or_make(path)
    except _Unusable as exc:
        log.warning(
            "cache key %s cannot be used: %s; this run reuses nothing from %s (set $%s, "
            "or fix the key file: a file of yours, mode 0600)",
            path,
            exc,
            cache_root,
            ENV,
        )
        return CacheKey(secret=secrets.token_hex(32).encode(), source="this run", lasting=False)
    return CacheKey(secret=secret, source=str(path), lasting=True)


class _Unusable(Exception):
    pass


def _read_or_make(path: Path) -> bytes:
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise _Unusable(f"its folder cannot be made ({exc.strerror})") from None
    _check_private(path.parent, folder=True)
    if not os.path.lexists(path):
        # written whole under another name, then linked into place: a build started at
        # the same moment reads a complete key or makes its own attempt, never a torn one
        part = path.with_name(f".{FILENAME}.{os.getpid()}.{secrets.token_hex(4)}")
        try:
            fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32) + "\n")
            os.link(part, path)
            log.info("made the cache key %s", path)
        except FileExistsError:
            pass  # another build made it first: that one is the key
        except OSError as exc:
            raise _Unusable(f"it cannot be made ({exc.strerror})") from None
        finally:
            part.unlink(missing_ok=True)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        why = "a symbolic link" if exc.errno == errno.ELOOP else exc.strerror
        raise _Unusable(f"it cannot be opened ({why})") from None
    with os.fdopen(fd, "rb") as f:
        _check_private(path, folder=False, st=os.fstat(f.fileno()))
        text = f.read(1024).strip()
    if len(text) < MIN_SECRET:
        raise _Unusable(f"it holds {len(text)} bytes, fewer than {MIN_SECRET}")
    return text


def _check_private(path: Path, *, folder: bool, st: os.stat_result | None = None) -> None:
    st = st or os.lstat(path)
    kind = stat.S_ISDIR if folder else stat.S_ISREG
    if not kind(st.st_mode):
        raise _Unusable(f"{path} is not a {'folder' if folder else 'regular file'}")
    if st.st_uid != os.geteuid():
        raise _Unusable(f"{path} is owned by another user (uid {st.st_uid})")
    others = (stat.S_IWGRP | stat.S_IWOTH) if folder else 0o077
    if st.st_mode & others:
        raise _Unusable(
            f"{path} can be {'written' if folder else 'read or written'} by others "
            f"(mode {stat.S_IMODE(st.st_mode):04o})"
        )
