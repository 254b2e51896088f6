"""`buildkit build --builder HOST`: run the build itself inside an emulated host.

Nuitka cannot cross-compile, so a linux-arm64 binary is built by an aarch64 Python and
gcc: the ones of the emulated host. The host gets the toolkit once, as a venv installed
from the pinned ``buildkit/data/toolkit-runtime.txt`` (hash-checked, no build isolation)
and kept beside the root (``hosts/<name>/toolkit/<digest>/``); buildkit's own code is
mounted from this installation, so both sides run the same code. The build runs with
the recipe, lockfiles, output folder and cache mounted at the same paths as here, so it
writes the release folder (artifact, manifest, SHA256SUMS, hardening reports, SBOM,
provenance) exactly as a build on a native host would, and shares the cache's verified
wheels and finished artifacts. This side then verifies the release folder.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from dataclasses import dataclass, replace
from importlib.resources import files
from pathlib import Path
from typing import Any

import buildkit

from .. import lock, targets, zigcc
from ..cache import Cache
from ..checks.run import EMULATED_ENV
from ..errors import CheckFailed, InputError, ToolError
from ..fsutil import output_errors, remove_tree
from ..recipe import Recipe
from ..release import vouch
from ..release.sign import check_key, sign
from ..release.verify import verify
from ..request import BuildRequest
from ..toolchain.venv import requirement_blocks
from ..tools import clean_env, output_tail
from . import HostSpec
from .store import Host, locked, run_in, use

log = logging.getLogger(__name__)

TOOLKIT_LOCK = "data/toolkit-runtime.txt"
VENV = "/opt/buildkit/venv"
SRC = "/opt/buildkit/src"
#: Where this machine's zig (the ziglang package folder: the executable and its lib/) is
#: mounted inside the builder.
ZIG_DIR = "/opt/buildkit/zig"
# Build backends installed first, so the sdists of the lock (nuitka) build without isolation.
_BACKENDS = ("setuptools", "wheel", "flit-core")


@dataclass(frozen=True, kw_only=True)
class Delegated:
    out: Path
    builder: str  # the host's name
    artifacts: tuple[str, ...]  # names written by the build inside the host
    signature: Path | None  # SHA256SUMS.sig, when signed here

    def to_json(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "builder": self.builder,
            "written": list(self.artifacts),
            "signature": str(self.signature) if self.signature else None,
        }


def _lock_text() -> str:
    return files("buildkit").joinpath(TOOLKIT_LOCK).read_text(encoding="utf-8")


def toolkit_venv(host: Host) -> Path:
    """The host's toolkit venv (outside path), installed now unless already there."""
    text = _lock_text()
    digest = hashlib.sha256((host.spec.digest() + text).encode()).hexdigest()[:20]
    final = host.folder / "toolkit" / digest
    # lexists: bin/python is a link to the root's interpreter (/usr/bin/python3.12), a
    # path that need not exist on this machine
    kind = f"host {host.spec.name} toolkit venv {digest}"
    if os.path.lexists(final / "bin" / "python"):
        _link_source(final)
        if (problem := host.cache.tree_problem(final, kind)) is None:
            return final
        log.warning("host %s: its toolkit venv %s: %s; making it again", host.spec.name,
                    final, problem)  # fmt: skip
        remove_tree(final)
    staging = host.folder / "toolkit" / f".{digest}.part"
    shutil.rmtree(staging, ignore_errors=True)
    with output_errors(staging.parent):
        staging.mkdir(parents=True)
        (staging.parent / f".{digest}.locks").mkdir(exist_ok=True)
    locks = staging.parent / f".{digest}.locks"
    try:
        backends = "".join(
            block + "\n"
            for block in requirement_blocks(text)
            if block.split("==", 1)[0].strip().lower() in _BACKENDS
        )
        (locks / "backends.txt").write_text(backends, encoding="utf-8")
        (locks / "toolkit.txt").write_text(text, encoding="utf-8")
        log.info(
            "host %s: installing the pinned toolkit (once; a few minutes under emulation)",
            host.spec.name,
            extra={"step": "builder"},
        )
        pip = [f"{VENV}/bin/python", "-m", "pip", "install", "--quiet", "--require-hashes",
               "--no-deps", "--no-build-isolation", "-r"]  # fmt: skip
        steps: list[tuple[str, list[str]]] = [
            ("venv", [host.spec.python, "-m", "venv", VENV]),
            ("build backends", [*pip, "/opt/buildkit/locks/backends.txt"]),
            ("toolkit", [*pip, "/opt/buildkit/locks/toolkit.txt"]),
        ]
        binds = [(staging, VENV, False), (locks, "/opt/buildkit/locks", True), *_trust_binds()]
        for what, argv in steps:
            proc = run_in(host, argv, binds=binds, env=_network_env(), capture=True, timeout=3600)
            if proc.returncode != 0:
                raise ToolError(
                    f"installing the toolkit in the host {host.spec.name} failed at the "
                    f"{what} step (exit {proc.returncode}):\n{output_tail(proc)}",
                    hint="the host needs PyPI (or PIP_INDEX_URL) to install the toolkit once",
                )
        _link_source(staging)
        os.rename(staging, final)
        host.cache.seal_tree(final, kind)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(locks, ignore_errors=True)
    return final


def _link_source(venv: Path) -> None:
    """buildkit itself comes from this installation, mounted at SRC: a .pth file puts it
    on the venv's path (for every process, Nuitka's plugin loader included)."""
    for site in venv.glob("lib/python3*/site-packages"):
        pth = site / "buildkit-source.pth"
        if not pth.exists():
            pth.write_text(SRC + "\n", encoding="utf-8")


_CERT_VARS = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "PIP_CERT")


def _network_env() -> dict[str, str]:
    """Only what reaches a registry (proxies, an index mirror, certificates this machine
    trusts) goes into the host."""
    keep = ("PIP_INDEX_URL", "UV_INDEX_URL", "UV_DEFAULT_INDEX", "UV_NATIVE_TLS", "http_proxy",
            "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "no_proxy", "NO_PROXY")  # fmt: skip
    env = clean_env()
    out = {k: env[k] for k in keep if k in env}
    out.update({k: env[k] for k in _CERT_VARS if k in env and os.path.isabs(env[k])})
    return out


def _trust_binds() -> list[tuple[Path, str, bool]]:
    """The certificate files and folders named by the environment, at the same paths
    inside (a registry behind a TLS-inspecting proxy needs its certificate there too)."""
    paths = {Path(v) for k, v in _network_env().items() if k in _CERT_VARS}
    outer = [p for p in paths if not any(o != p and p.is_relative_to(o) for o in paths)]
    return [(p, str(p), True) for p in sorted(outer) if p.exists()]


def build_on(
    spec: HostSpec,
    request: BuildRequest,
    recipe: Recipe,
    cache: Cache,
    *,
    sign_key: Path | None = None,
    keep_foreign: bool = False,
) -> Delegated:
    """Build ``request`` (one recipe, this host's target) inside the host; the release
    folder it writes is verified here, then signed here with ``sign_key`` (the key never
    enters the host) unless it holds files this build cannot vouch for."""
    if sign_key is not None:
        check_key(sign_key)
    want_targets = request.targets or (spec.target,)
    if not spec.builder:
        raise InputError(
            f"the emulated host {spec.name} does not run builds (its root has no C compiler "
            "or toolkit)",
            hint=f"build them on {targets.get(spec.target).native_builder}",
        )
    others = [t for t in want_targets if t != spec.target]
    if others:
        raise InputError(
            f"--builder {spec.name} builds {spec.target} only, not {', '.join(others)}",
            hint="build the other targets without --builder (or with their own builder)",
        )
    if spec.target not in {t.name for t in recipe.targets}:
        raise InputError(f"{recipe.path}: [targets] has no {spec.target}")
    # The locks are read inside, never written there (the lock folder is mounted
    # read-only): a missing or stale one is refused here, with what to run.
    problems = lock.check_targets(recipe, [recipe.target(spec.target)], request.lockfiles)
    if problems:
        raise lock.check_failed(problems, recipe.root)
    host = use(spec, cache)
    # One build at a time per host: builds under emulation are heavy, and a second build
    # of the same inputs then reuses the first one's artifact from the cache.
    with locked(cache, f"{spec.name}.build"):
        out, written = _build_locked(host, request, recipe, cache)
    signature = None
    if sign_key is not None:
        kept = vouch.foreign(out, recipe, list(written), {}, cache)
        if kept and not keep_foreign:
            raise CheckFailed(
                f"built, but will not sign {out / 'SHA256SUMS'}: it would also sign "
                f"{len(kept)} file(s) this build did not produce: {vouch.describe(kept)}",
                hint="build into an empty --out, or pass --keep-foreign to sign them anyway",
            )
        signature = sign(out, sign_key)
    return Delegated(out=out, builder=spec.name, artifacts=written, signature=signature)


def _build_locked(
    host: Host, request: BuildRequest, recipe: Recipe, cache: Cache
) -> tuple[Path, tuple[str, ...]]:
    spec = host.spec
    venv = toolkit_venv(host)
    lock_folder = lock.lock_dir(recipe, request.lockfiles).parent.resolve()
    out = request.out.resolve()
    with output_errors(out):
        out.mkdir(parents=True, exist_ok=True)
    cache_root = cache.root.resolve()
    recipe_root = recipe.root.resolve()
    binds: list[tuple[Path, str, bool]] = [
        (venv, VENV, True),
        (Path(buildkit.__file__).resolve().parent, f"{SRC}/buildkit", True),
        (recipe_root, str(recipe_root), True),
        (lock_folder, str(lock_folder), True),
        (out, str(out), False),
        (cache_root, str(cache_root), False),
        *_trust_binds(),
    ]
    # the checks inside record system calls with QEMU's log, not strace (no ptrace there)
    # the same cache key: what the build inside stores is reused (and vouched for) here
    env = {**_network_env(), "CI": os.environ.get("CI", "true"), **cache.key.env()}
    if spec.qemu:
        env[EMULATED_ENV] = "qemu"
    if "nuitka" in (request.formats or recipe.formats):
        toolchain_binds, toolchain_env = _toolchain(host, cache)
        binds += toolchain_binds
        env.update(toolchain_env)
    wheelhouse = request.wheelhouse.resolve() if request.wheelhouse is not None else None
    if wheelhouse is not None:
        binds.append((wheelhouse, str(wheelhouse), True))
    # Inside, every path is the same as here (each folder is mounted at its own path).
    argv = replace(
        request,
        recipe=recipe_root,
        targets=(spec.target,),
        out=out,
        cache_dir=cache_root,
        lockfiles=lock_folder,
        wheelhouse=wheelhouse,
        json=False,
    ).to_argv(f"{VENV}/bin/python")
    before = {p.name for p in out.iterdir()}
    log.info(
        "building %s on the emulated host %s", recipe.name, spec.name, extra={"step": "builder"}
    )
    # The build inside reports to stderr: stdout is this build's (``--json``).
    proc = run_in(host, argv, binds=binds, env=env, cwd=str(recipe_root), stdout_to_stderr=True)
    if proc.returncode != 0:
        raise CheckFailed(
            f"the build on the emulated host {spec.name} failed (exit {proc.returncode}); "
            "its message is above",
            hint="nothing new was published unless the message says so",
        )
    result = verify(out)
    if not result.ok:
        raise CheckFailed(f"the release folder the host wrote does not verify: {result.headline()}")
    return out, tuple(sorted(p.name for p in out.iterdir() if p.name not in before))


def _toolchain(host: Host, cache: Cache) -> tuple[list[tuple[Path, str, bool]], dict[str, str]]:
    """For a Nuitka build of a target with a hermetic toolchain: the toolchain, made here
    first (cross-compiled, checked on this host), and this machine's own zig, mounted
    inside. Nuitka's Python phase then runs on the toolchain's interpreter under
    emulation, and every C compile and link is a native zig cross-compiling for the
    target (zig is one static executable: it runs inside the foreign root unemulated)."""
    from ..toolchain import has_toolchain, store

    target = targets.get(host.spec.target)
    if not has_toolchain(target):
        return [], {}
    store.ensure(target, cache)
    root = store.toolchain_root(cache).resolve()
    zig = zigcc.zig("the hermetic toolchain").resolve()
    binds = [(root, str(root), False), (zig.parent, ZIG_DIR, True)]
    env = {store.TOOLCHAIN_ENV: str(root), zigcc.ZIG_ENV: f"{ZIG_DIR}/{zig.name}"}
    return binds, env
