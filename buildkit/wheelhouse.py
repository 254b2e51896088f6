"""Fetch exactly the locked wheels for a target into the cache, by hash.

For each locked requirement the wheelhouse picks, among the files whose sha256 the lock
lists, the cached wheel whose tags fit the target best. What is missing is downloaded
with pip (``--require-hashes``, the target's platform tags, binaries only), each file's
digest checked again against the lock before it enters the cache. ``offline`` uses the
cache alone and names what is missing.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from . import tools, wheelcheck
from .cache import Cache
from .errors import (
    InputError,
    IntegrityError,
    LockError,
    NetworkError,
    OfflineError,
    ToolError,
)
from .fsutil import sha256_file
from .lock import LockedRequirement, Lockfile
from .targets import Target

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Wheel:
    name: str
    version: str
    filename: str
    sha256: str
    path: Path


def _rank(filename: str, ranks: dict[str, int]) -> int | None:
    try:
        _, _, _, wheel_tags = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        return None
    found = [ranks[str(t)] for t in wheel_tags if str(t) in ranks]
    return min(found) if found else None


def _pick(req: LockedRequirement, cache: Cache, ranks: dict[str, int]) -> Wheel | None:
    """The best verified cached wheel for ``req`` on this target, or None."""
    candidates = []
    for digest in req.hashes:
        path = cache.find_wheel(digest)
        if path is not None and (rank := _rank(path.name, ranks)) is not None:
            candidates.append((rank, path.name, digest))
    for _, _, digest in sorted(candidates):
        path = cache.verified_wheel(digest)
        if path is not None:
            return Wheel(
                name=req.name,
                version=req.version or "",
                filename=path.name,
                sha256=digest,
                path=path,
            )
    return None


def ensure(
    lock: Lockfile, target: Target, python: str, cache: Cache, *, offline: bool
) -> tuple[Wheel, ...]:
    """The verified wheels for every requirement of ``lock``, fetching what is missing."""
    if not lock.requirements:
        return ()
    ranks = {str(t): i for i, t in enumerate(target.wheel_tags(python))}
    chosen: dict[str, Wheel] = {}
    missing: list[LockedRequirement] = []
    for req in lock.requirements:
        if (wheel := _pick(req, cache, ranks)) is not None:
            chosen[req.name] = wheel
        else:
            missing.append(req)
    if missing and offline:
        names = ", ".join(f"{r.name}=={r.version}" for r in missing)
        raise OfflineError(
            f"--offline: no verified wheel for {target.name} in the cache for {names}",
            hint=f"run the build once without --offline to fill {cache.root}",
        )
    if missing:
        _download(missing, target, python, cache)
        for req in missing:
            wheel = _pick(req, cache, ranks)
            if wheel is None:
                raise LockError(
                    f"{req.name} {req.version} has no wheel for {target.name} "
                    f"(CPython {python}) among the files the lock pins",
                    hint=f"run `buildkit lock` again, or drop {target.name} from [targets]",
                )
            chosen[req.name] = wheel
    return tuple(chosen[r.name] for r in lock.requirements)


#: Attempts pip makes after a failed connection (backoff 0.25 s doubling, urllib3's) and
#: after a download cut short (resumed with a range request, or restarted).
RETRIES = 3


def _seconds(name: str, default: float) -> float:
    """A time limit from the environment: ``BUILDKIT_NET_TIMEOUT`` (seconds a connection
    may stay silent) or ``BUILDKIT_FETCH_DEADLINE`` (seconds for one target's fetch)."""
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise InputError(f"{name}={raw!r} is not a positive number of seconds")
    return value


def _download(missing: list[LockedRequirement], target: Target, python: str, cache: Cache) -> None:
    log.info("fetching %d wheel(s) for %s", len(missing), target.name)
    net_timeout = _seconds("BUILDKIT_NET_TIMEOUT", 30)
    deadline = _seconds("BUILDKIT_FETCH_DEADLINE", 1800)
    work = cache.tmp_dir()
    try:
        reqs = work / "requirements.txt"
        reqs.write_text("".join(r.render() for r in missing), encoding="utf-8")
        out = work / "wheels"
        nodot = python.replace(".", "")
        cmd: list[str | Path] = [
            tools.find_tool("python"), "-m", "pip", "download", "--no-deps",
            "--only-binary=:all:", "--require-hashes", "--progress-bar", "off",
            "--python-version", python, "--implementation", "cp",
            "--abi", f"cp{nodot}", "--abi", "abi3", "--abi", "none",
            "--dest", out, "--requirement", reqs,
            "--retries", str(RETRIES), "--resume-retries", str(RETRIES),
            "--timeout", str(net_timeout),
        ]  # fmt: skip
        for tag in target.platform_tags:
            cmd += ["--platform", tag]
        try:
            tools.run(
                cmd,
                what=f"downloading wheels for {target.name}",
                timeout=deadline,
                env={"PIP_CACHE_DIR": str(cache.tool_dir("pip"))},
                hint="check the network and the package index, or build with --offline",
            )
        except ToolError as exc:
            names = ", ".join(f"{r.name}=={r.version}" for r in missing)
            if isinstance(exc.__cause__, subprocess.TimeoutExpired):
                raise NetworkError(
                    f"fetching {names} for {target.name} did not finish within "
                    f"{deadline:.0f} s (BUILDKIT_FETCH_DEADLINE); it was stopped",
                    hint="check the package index (a stalled mirror?); raise the deadline "
                    "for a slow link; nothing partial was kept",
                ) from None
            if "DO NOT MATCH THE HASHES" in exc.message:
                bad = re.findall(r"^\s*([A-Za-z0-9._-]+==\S+) from ", exc.message, re.M)
                got = re.findall(r"^\s*Got\s+([0-9a-f]{64})", exc.message, re.M)
                raise IntegrityError(
                    f"{', '.join(bad) or 'a wheel'} for {target.name}: the file the index "
                    f"serves has sha256:{', '.join(got) or '?'}, which the lock does not pin; "
                    "nothing was kept",
                    hint="if the lockfile was edited by hand, run `buildkit lock` again; if "
                    "not, the index serves other bytes than when it was locked: find out why "
                    "before locking again",
                ) from None
            if reason := tools.network_failure(exc.message):
                raise NetworkError(
                    f"fetching {names} for {target.name} needs the package index, which "
                    f"could not be reached: {reason}",
                    hint="check the network, the proxy (https_proxy) or PIP_INDEX_URL; or "
                    "fill the cache once where the index is reachable and build with --offline",
                ) from None
            m = re.search(r"satisfies the requirement ([^\s(]+)", exc.message)
            if m:
                raise LockError(
                    f"{m.group(1)} has no wheel for {target.name} (CPython {python})",
                    hint=f"pick a version with {target.platform_tags[0]} wheels, "
                    f"or drop {target.name} from [targets]",
                ) from None
            raise
        allowed = {(r.name, h) for r in missing for h in r.hashes}
        for path in sorted(out.glob("*.whl")):
            digest = sha256_file(path)
            name = canonicalize_name(parse_wheel_filename(path.name)[0])
            if (name, digest) not in allowed:
                raise IntegrityError(
                    f"downloaded {path.name} has sha256:{digest}, which the lock does not pin",
                    hint="the index served different bytes; the file was not used",
                )
            wheelcheck.check(path, f"{name}=={parse_wheel_filename(path.name)[1]}")
            cache.add_wheel(path, digest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
