"""Content-addressed cache with atomic fills.

Layout under the cache root (``--cache-dir``, ``$BUILDKIT_CACHE_DIR`` or
``~/.cache/buildkit``)::

    wheels/<aa>/<sha256>/<wheel filename>   downloaded wheels, by the hash of their bytes
    blobs/<aa>/<sha256>                     built artifacts, by the hash of their bytes
    actions/<aa>/<key>.json                 action key -> blob digest (an unchanged build)
    proofs/<aa>/<key>.json                  the passed checks of an artifact
    made/<aa>/<sha256>                      "a build with this key made this artifact"
    trees/<aa>/<sha256>/                    the folder packed inside a native artifact
    tools/                                  the tools' own caches (pip, pex, ccache, Nuitka, zig)
    tmp/                                    fills in progress (same file system: rename)

Entries appear only complete (filled in ``tmp/``, verified, then renamed into place) and
are verified again when used: a changed entry is removed and never trusted.

The cache is input someone else may have written (a CI cache restored from another
branch, a shared machine). Wheels, blobs and downloads are named by the sha256 of their
bytes and checked against it when used. What names them, action entries, check results
and "made here" marks, is reused only when sealed with the cache key, kept outside the
cache (:mod:`buildkit.cachekey`); the seal of an action entry covers the digest of the
packed folder kept with it. A forged entry is a miss with a warning. The cache itself
and its top folders must be owned by this user (or root) and not writable by others, or
nothing runs (``private``): the tools' own caches (ccache, Nuitka's, zig's) hold code no
seal covers.

A killed build cannot clean up after itself, so what it left in ``tmp/`` is swept by the
next one. Each process names its folders there after an owner lock it holds while it
runs (``tmp/owner-<id>.lock``, flock); a folder whose owner lock can be taken belongs to
a process that is gone. Locks work across containers and bind mounts sharing the cache,
where process ids would not.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import stat
import tempfile
import time
import uuid
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from .cachekey import CacheKey, load
from .errors import InputError
from .fsutil import (
    atomic_write_text,
    escaped,
    folder_digest,
    folder_lock,
    output_errors,
    remove_tree,
    sha256_file,
)

log = logging.getLogger(__name__)

#: Kept trees this process has checked (or sealed), with their digest: a build uses
#: its toolchain and hosts many times and reads them whole once.
_VERIFIED: dict[Path, str] = {}
#: Cache roots this process found private (``Cache.private``).
_PRIVATE: set[Path] = set()
#: This process's owner id and its held lock, per tmp/ folder (one per cache root).
_OWNERS: dict[Path, tuple[str, int]] = {}
#: A folder in tmp/ that no owner lock claims (older buildkit, or a lock already swept)
#: is removed once it is this old.
_UNOWNED_AGE = 24 * 3600


def default_root() -> Path:
    if env := os.environ.get("BUILDKIT_CACHE_DIR"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "buildkit"


@dataclass(frozen=True, kw_only=True)
class CachedArtifact:
    path: Path
    sha256: str
    payload: Path | None  # the folder packed inside a native artifact
    facts: dict[str, int] | None = None  # what its build proved (counts), kept with it


@dataclass(frozen=True, kw_only=True)
class Cache:
    """The cache's folders are spelt here only: other modules ask for them."""

    root: Path

    @cached_property
    def key(self) -> CacheKey:
        """The key that seals what this cache's entries name (checked once per run)."""
        self.private()
        return load(self.root)

    def private(self) -> None:
        """Refuse (InputError) a cache someone else could write: the root, its top
        folders and the tools' folders must be owned by this user or root and not
        writable by others (links followed, as a build would). Checked once per process
        (every fill and tool folder asks)."""
        if self.root not in _PRIVATE:
            _check_private(self.root)
            _PRIVATE.add(self.root)

    def seal_tree(self, folder: Path, kind: str, *, skip: frozenset[str] = frozenset()) -> None:
        """Seal the whole content of a tree buildkit keeps (a toolchain's interpreter, a
        kept venv, a host's root) in ``<folder>.sealed`` beside it. ``kind`` says what it
        must be (with the digest of what it was made from); ``skip``: file names
        rewritten on every use, with buildkit's own content."""
        doc = {"kind": kind, "name": folder.name, "digest": folder_digest(folder, skip=skip)}
        entry = {**doc, "seal": self.key.seal("tree", doc)}
        with output_errors(folder.parent):
            atomic_write_text(_seal_path(folder), json.dumps(entry, sort_keys=True) + "\n")
        _VERIFIED[folder.resolve()] = str(doc["digest"])

    def tree_problem(
        self, folder: Path, kind: str, *, skip: frozenset[str] = frozenset()
    ) -> str | None:
        """Why a kept tree cannot be used (None: it is what a build holding this cache's
        key sealed, byte for byte). Checked once per process."""
        seal_file = _seal_path(folder)
        entry = _read_entry(seal_file)
        if entry is None:
            return (
                f"it has no seal ({seal_file.name} missing): made by an older buildkit, or "
                "not by a build holding this cache's key"
            )
        doc = {k: entry.get(k) for k in ("kind", "name", "digest")}
        if (doc["kind"], doc["name"]) != (kind, folder.name) or not self.key.opens(
            "tree", doc, entry.get("seal")
        ):
            return f"its seal {seal_file.name} was not made for it with this cache's key"
        if _VERIFIED.get(folder.resolve()) == doc["digest"]:
            return None
        try:
            digest = folder_digest(folder, skip=skip)
        except OSError as exc:
            return f"it cannot be read ({exc})"
        if digest != doc["digest"]:
            return "its files changed since it was made and sealed"
        _VERIFIED[folder.resolve()] = digest
        return None

    @property
    def wheels(self) -> Path:
        """Verified wheels by sha256 (shared by repro's builds)."""
        return self.root / "wheels"

    @property
    def tools(self) -> Path:
        """Tools' own caches (ccache, Nuitka's), one folder each."""
        return self.root / "tools"

    @property
    def hosts(self) -> Path:
        """The emulated hosts' roots, one folder each, and their locks
        (``$BUILDKIT_HOSTS_DIR`` to share one set between caches)."""
        env = os.environ.get("BUILDKIT_HOSTS_DIR")
        return Path(env) if env else self.root / "hosts"

    def download(self, sha256: str, filename: str) -> Path:
        """Where a source archive with this digest is kept once verified."""
        return self.root / "downloads" / sha256[:2] / sha256 / filename

    def tool_dir(self, name: str) -> Path:
        """A tool's own cache folder (ccache, Nuitka's, zig's, pip's, pex's). Their
        entries are code no seal covers, so ``tools/`` is used only as a build holding
        this cache's key left it (``tools/.sealed``); one written under another key, or
        under none (a cache restored from a job without the secret), is emptied first."""
        self.private()
        self._own_tools()
        path = self.tools / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _own_tools(self) -> None:
        stamp = self.tools / ".sealed"
        root = self.tools.resolve()
        if root in _VERIFIED:
            return
        # concurrent builds on one cache take turns: one stamps, the others find it
        with folder_lock(self.tools), output_errors(self.root):
            entry = _read_entry(stamp)
            if entry is None or not self.key.opens("tools", "tools", entry.get("seal")):
                if any(self.tools.iterdir()):
                    log.warning(
                        "emptied %s: it was not written by a build holding this cache's "
                        "key (%s), and compilers' caches hold code no seal covers",
                        self.tools,
                        self.key.source,
                    )
                    for child in self.tools.iterdir():
                        if child.is_dir() and not child.is_symlink():
                            remove_tree(child)
                        else:
                            child.unlink()
                atomic_write_text(
                    stamp, json.dumps({"seal": self.key.seal("tools", "tools")}) + "\n"
                )
        _VERIFIED[root] = "tools"

    def tmp_dir(self, prefix: str = "") -> Path:
        """A fresh private folder for a fill, on the cache's file system, owned by this
        process (see the module's docstring)."""
        base = self.root / "tmp"
        with output_errors(self.root):
            base.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.private()
            owner = _owner(base)
            return Path(tempfile.mkdtemp(prefix=f"{owner}-{prefix}", dir=base))

    def sweep_tmp(self) -> int:
        """Remove what processes that are gone left in ``tmp/``; returns how many."""
        base = self.root / "tmp"
        try:
            names = sorted(os.listdir(base))
        except OSError:
            return 0
        mine = _OWNERS.get(base, ("", -1))[0]
        removed = 0
        owners = {n[len("owner-") : -len(".lock")] for n in names if n.startswith("owner-")}
        gone = {o for o in owners if o != mine and _owner_gone(base / f"owner-{o}.lock")}
        for name in names:
            if name.startswith("owner-"):
                continue
            path = base / name
            owner = name.split("-", 1)[0]
            if owner in owners:
                if owner not in gone:
                    continue
            else:
                try:
                    if time.time() - path.lstat().st_mtime < _UNOWNED_AGE:
                        continue
                except OSError:
                    continue
            if path.is_dir() and not path.is_symlink():
                if remove_tree(path):
                    removed += 1
            else:
                path.unlink(missing_ok=True)
                removed += 1
        for owner in gone:
            (base / f"owner-{owner}.lock").unlink(missing_ok=True)
        if removed:
            log.info("removed %d leftover(s) of interrupted builds from %s", removed, base)
        return removed

    # --- wheels ---------------------------------------------------------------------------

    def _wheel_dir(self, sha256: str) -> Path:
        return self.wheels / sha256[:2] / sha256

    def find_wheel(self, sha256: str) -> Path | None:
        """The cached wheel with this digest, not yet verified, or None."""
        folder = self._wheel_dir(sha256)
        try:
            files = [p for p in folder.iterdir() if p.suffix == ".whl"]
        except FileNotFoundError:
            return None
        return files[0] if len(files) == 1 else None

    def add_wheel(self, path: Path, sha256: str) -> Path:
        """Move a downloaded, verified wheel into the cache; return its cached path."""
        final = self._wheel_dir(sha256)
        if (existing := self.find_wheel(sha256)) is not None:
            return existing
        staging = self.tmp_dir()
        with output_errors(self.root):
            shutil.move(str(path), staging / path.name)
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(staging, final)
            except OSError:  # filled by a concurrent build meanwhile
                shutil.rmtree(staging, ignore_errors=True)
        return final / path.name

    def verified_wheel(self, sha256: str) -> Path | None:
        """The cached wheel with this digest after checking its bytes; a bad one is dropped."""
        path = self.find_wheel(sha256)
        if path is None:
            return None
        if sha256_file(path) != sha256:
            log.warning(
                "refused cached wheel %s: its bytes do not match sha256:%s; removed from the cache",
                path.name,
                sha256,
            )
            shutil.rmtree(path.parent, ignore_errors=True)
            return None
        return path

    # --- payload folders of native artifacts --------------------------------------------

    def _tree(self, artifact_sha256: str) -> Path:
        return self.root / "trees" / artifact_sha256[:2] / artifact_sha256

    def _store_tree(self, artifact_sha256: str, folder: Path) -> Path:
        """Keep the folder packed inside an artifact (for the audit); returns its cached path."""
        final = self._tree(artifact_sha256)
        if final.is_dir():
            return final
        staging = self.tmp_dir() / "tree"
        with output_errors(self.root):
            shutil.copytree(folder, staging, symlinks=True)
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(staging, final)
            except OSError:  # stored by a concurrent build meanwhile
                shutil.rmtree(staging.parent, ignore_errors=True)
            else:
                shutil.rmtree(staging.parent, ignore_errors=True)
        return final

    # --- check results --------------------------------------------------------------------

    def _proof(self, key: str) -> Path:
        return self.root / "proofs" / key[:2] / f"{key}.json"

    def store_proof(self, key: str, doc: dict[str, Any]) -> None:
        """Keep the passed checks of an artifact (key: its bytes, the checks, the places),
        sealed."""
        entry = {"proof": doc, "seal": self.key.seal("proof", [key, doc])}
        with output_errors(self.root):
            atomic_write_text(self._proof(key), json.dumps(entry, sort_keys=True) + "\n")

    def lookup_proof(self, key: str) -> dict[str, Any] | None:
        """The checks kept for ``key`` when this cache's key sealed them, else None."""
        path = self._proof(key)
        entry = _read_entry(path)
        if entry is None:
            return None
        doc = entry.get("proof")
        if not isinstance(doc, dict) or not self.key.opens("proof", [key, doc], entry.get("seal")):
            self._refused(path)
            return None
        return doc

    def _refused(self, path: Path) -> None:
        if self.key.lasting:
            log.warning(
                "refused cache entry %s: it is not sealed with this cache's key (%s): "
                "written with another key, or forged; not reused",
                escaped(str(path)),
                self.key.source,
            )

    # --- artifacts ------------------------------------------------------------------------

    def _blob(self, sha256: str) -> Path:
        return self.root / "blobs" / sha256[:2] / sha256

    def _action(self, key: str) -> Path:
        return self.root / "actions" / key[:2] / f"{key}.json"

    def _made(self, sha256: str) -> Path:
        return self.root / "made" / sha256[:2] / sha256

    def store_artifact(
        self,
        key: str,
        path: Path,
        payload: Path | None = None,
        facts: dict[str, int] | None = None,
    ) -> CachedArtifact:
        """Record the output of action ``key`` (and the folder packed inside it, if any).

        The action entry is written last, so it only ever points at complete entries; it
        is sealed, with the digest of the packed folder.
        """
        digest = sha256_file(path)
        blob = self._blob(digest)
        with output_errors(self.root):
            if not blob.is_file():
                blob.parent.mkdir(parents=True, exist_ok=True)
                tmp = self.tmp_dir() / digest
                shutil.copyfile(path, tmp)
                os.replace(tmp, blob)
                shutil.rmtree(tmp.parent, ignore_errors=True)
            tree = self._store_tree(digest, payload) if payload is not None else None
            body = {
                "sha256": digest,
                "payload": tree is not None,
                "tree": folder_digest(tree) if tree is not None else None,
                "facts": facts,
            }
            entry = {**body, "seal": self.key.seal("action", [key, body])}
            atomic_write_text(self._made(digest), self.key.seal("made", digest) + "\n")
            atomic_write_text(self._action(key), json.dumps(entry) + "\n")
        return CachedArtifact(path=blob, sha256=digest, payload=tree, facts=facts)

    def has_artifact(self, sha256: str) -> bool:
        """Whether a build holding this cache's key stored an artifact with this digest."""
        if len(sha256) != 64 or not self._blob(sha256).is_file():
            return False
        try:
            seal = self._made(sha256).read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            return False
        return self.key.opens("made", sha256, seal)

    def lookup_artifact(self, key: str) -> CachedArtifact | None:
        """The verified artifact recorded for ``key``, or None (a bad entry is dropped;
        one this cache's key did not seal is refused with a warning)."""
        path = self._action(key)
        entry = _read_entry(path)
        if entry is None:
            return None
        body = {k: entry.get(k) for k in ("sha256", "payload", "tree", "facts")}
        if not self.key.opens("action", [key, body], entry.get("seal")):
            self._refused(path)
            return None
        digest, has_payload, facts = str(body["sha256"]), bool(body["payload"]), body["facts"]
        if facts is not None and not (
            isinstance(facts, dict)
            and all(isinstance(k, str) and type(v) is int for k, v in facts.items())
        ):
            return None
        blob = self._blob(digest)
        if not blob.is_file():
            return None
        if sha256_file(blob) != digest:
            log.warning("refused cached artifact %s: its bytes changed; rebuilding", blob)
            blob.unlink(missing_ok=True)
            return None
        tree = self._tree(digest) if has_payload else None
        if tree is not None:
            try:
                kept = folder_digest(tree)
            except OSError:
                return None  # the packed folder is gone: build again to have it for the audit
            if kept != body["tree"]:
                log.warning(
                    "refused the packed folder %s: it changed since it was stored; rebuilding",
                    escaped(str(tree)),
                )
                remove_tree(tree)
                return None
        return CachedArtifact(path=blob, sha256=digest, payload=tree, facts=facts)


def _seal_path(folder: Path) -> Path:
    return folder.with_name(folder.name + ".sealed")


def _read_entry(path: Path) -> dict[str, Any] | None:
    """A small JSON object the cache keeps, or None (missing, not one, too large)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return None
            raw = f.read(_MAX_ENTRY + 1)
        doc = json.loads(raw) if len(raw) <= _MAX_ENTRY else None
    except (OSError, ValueError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None


#: Bytes of one action entry or check result (a real one: a few KB).
_MAX_ENTRY = 4 << 20


def _check_private(root: Path) -> None:
    """See ``Cache.private``."""
    try:
        folders = [root, *(p for p in root.iterdir() if p.is_dir())]
        tools = root / "tools"
        if tools.is_dir():
            folders += [p for p in tools.iterdir() if p.is_dir()]
    except FileNotFoundError:
        return  # made by this build, with this user's umask
    except OSError as exc:
        raise InputError(
            f"cache {root} cannot be read: {exc.strerror}",
            hint="give a cache folder of yours with --cache-dir",
        ) from None
    me = os.geteuid()
    for folder in folders:
        try:
            st = os.stat(folder)
        except OSError:
            continue
        if st.st_uid not in (me, 0):
            why = f"is owned by another user (uid {st.st_uid})"
        elif st.st_mode & stat.S_IWOTH:
            why = f"can be written by other users (mode {stat.S_IMODE(st.st_mode):04o})"
        else:
            continue
        raise InputError(
            f"cache folder {escaped(str(folder))} {why}: whoever can write the cache can "
            "change what builds run (its compiler caches hold code no seal covers)",
            hint=f"make it yours alone (chown -R $(id -u) {root}; chmod -R o-w {root}), or "
            "build with another --cache-dir",
        )


def _owner(base: Path) -> str:
    """This process's owner id for ``base``, taking its lock on first use."""
    if base in _OWNERS and _OWNERS[base][1] >= 0:
        return _OWNERS[base][0]
    owner = uuid.uuid4().hex[:12]
    fd = os.open(base / f"owner-{owner}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # held until this process exits
    _OWNERS[base] = (owner, fd)
    return owner


def _owner_gone(lock: Path) -> bool:
    """Whether no live process holds ``lock`` (taking it for a moment to find out)."""
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # held: its process runs
    finally:
        os.close(fd)
    return True
