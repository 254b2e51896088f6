"""`buildkit build`: lock check, fetch, build (or reuse), audit and gate, release into dist/.

The hardening gate: every artifact built is audited before anything is published; the
recipe's ``[hardening]`` policy (default: relro-full, canary, nx, pie, fortify on our own
compiled code) decides. A failed gate publishes nothing, writes the audit as
``<recipe>-<version>.rejected.hardening.*`` into the output folder and exits 1. A passed
gate publishes, then writes ``<recipe>-<version>.hardening.{json,sarif,md,html}`` covering
every artifact of that recipe version in the release folder, the SBOM
(``.cdx.json``) and provenance (``.intoto.jsonl``), all listed in SHA256SUMS, and with a
signing key signs SHA256SUMS.

Refusals: a (target, format) this host cannot build fails the whole build before any
work when both its target and its format were asked for explicitly (``--target`` and
``--format``); when either comes from the recipe's defaults it is skipped and reported
in the result. A build left with nothing to do fails (exit 2).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

from . import __version__, buildinfo, closure, entry, hardening, lock, native, targets, wheelhouse
from .audit.baseline import Baseline
from .audit.policy import GateResult
from .audit.report import policy_document
from .backends import Backend, BuildJob, launcher, registry
from .buildinfo import MEMBER, BuildInfo
from .cache import Cache, CachedArtifact
from .checks import run as checks_run
from .checks import trace as checks_trace
from .errors import CheckFailed, InputError, RecipeError, did_you_mean
from .fsutil import sha256_file
from .recipe import Hardening, Recipe, TargetSpec
from .release import sign, stage, vouch
from .release.manifest import ArtifactRecord

log = logging.getLogger(__name__)

_SKIP = {"__pycache__", ".git", ".mypy_cache", ".pytest_cache"}
ACTION_KEY_VERSION = "3"


@dataclass(frozen=True, kw_only=True)
class Plan:
    target: targets.Target
    python: str
    backend: Backend
    options: dict[str, str]
    #: a zipapp's program filter (zipapp_seccomp.ProgramFilter.encode()), for its second
    #: build (see _arm_filters)
    seccomp_filter: str = ""

    def artifact_name(self, recipe: Recipe) -> str:
        suffix = self.backend.suffix(self.options)
        return f"{recipe.name}-{recipe.version}-{self.target.name}{suffix}"


@dataclass(frozen=True, kw_only=True)
class Refusal:
    target: str
    format: str
    reason: str

    def __str__(self) -> str:
        return f"{self.format} for {self.target}: {self.reason}"


@dataclass(frozen=True, kw_only=True)
class BuiltArtifact:
    name: str
    target: str
    format: str
    sha256: str
    size: int
    path: Path
    reused: bool
    seconds: float
    payload: Path | None  # the folder packed inside a native artifact (kept in the cache)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": str(self.path),
            "target": self.target,
            "format": self.format,
            "sha256": self.sha256,
            "size": self.size,
            "reused": self.reused,
            "seconds": round(self.seconds, 3),
            "payload": str(self.payload) if self.payload else None,
        }


@dataclass(frozen=True, kw_only=True)
class BuildResult:
    out: Path
    artifacts: tuple[BuiltArtifact, ...]
    skipped: tuple[Refusal, ...]
    checksums: Path
    manifest: Path
    gate: GateResult
    reports: tuple[Path, ...]
    signature: Path | None  # SHA256SUMS.sig, when signed
    checks: Mapping[str, checks_run.ArtifactChecks]  # the recipe's checks, by artifact

    def to_json(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "checksums": str(self.checksums),
            "signature": str(self.signature) if self.signature else None,
            "manifest": str(self.manifest),
            "hardening": {
                "reports": [str(p) for p in self.reports],
                "gate": policy_document(self.gate),
            },
            "skipped": [
                {"target": r.target, "format": r.format, "reason": r.reason} for r in self.skipped
            ],
            "artifacts": [a.to_json() for a in self.artifacts],
            "checks": {name: c.to_dict() for name, c in self.checks.items()},
        }


def policy_of(recipe: Recipe) -> Hardening:
    return recipe.hardening or Hardening(require=hardening.DEFAULT_REQUIRE, scope="own", waivers=())


def seccomp_of(recipe: Recipe) -> checks_run.Seccomp:
    """The recipe's seccomp mode and additions, each addition a call of x86_64 or aarch64
    or an address family (``AF_INET6``: socket() may ask for it)."""
    policy = policy_of(recipe)
    if policy.seccomp == "off":
        return checks_run.Seccomp(mode="off")
    from .seccomp import family_number, libseccomp

    for call in policy.seccomp_allow:
        if call.startswith("AF_"):
            if family_number(call) is None:
                raise RecipeError(
                    f"{recipe.path}: [hardening].seccomp_allow: {call!r} is not an address "
                    "family of Linux",
                    hint="write families as strace shows them, e.g. AF_INET6, AF_NETLINK",
                )
        elif all(libseccomp.number(arch, call) is None for arch in libseccomp.TOKENS):
            raise RecipeError(
                f"{recipe.path}: [hardening].seccomp_allow: {call!r} is not a system call of "
                f"{' or '.join(libseccomp.TOKENS)}",
                hint="write names as strace shows them, e.g. fork, ptrace, openat",
            )
    return checks_run.Seccomp(mode=policy.seccomp, allow=policy.seccomp_allow)


def _warn_thin(recipe: Recipe) -> None:
    from . import seccomp

    policy = policy_of(recipe)
    if policy.seccomp != "off" and seccomp.thin(c.args for c in recipe.checks):
        log.warning(
            "the recipe's checks only ask the program about itself (--help, --version): the "
            "seccomp profile recorded from them denies every call its real work makes%s; add "
            "[[checks]] that do that work, or list the calls it needs in "
            "[hardening].seccomp_allow",
            " (and seccomp = 'enforce' puts that profile into the binary)"
            if policy.seccomp == "enforce"
            else "",
        )


def _warn_unfiltered(recipe: Recipe, built: list[tuple[Path, ArtifactRecord]]) -> None:
    if policy_of(recipe).seccomp != "enforce":
        return
    others = [
        r.name
        for _, r in built
        if targets.get(r.target).os == "linux"
        and r.inputs["settings"].get("seccomp") not in ("slot", "boot")
    ]
    if others:
        log.warning(
            'seccomp = "enforce": %s carry no filter of their own (Nuitka onefile binaries '
            "and zipapps do, a standalone folder does not); run them under the release's "
            "profile (docker, systemd)",
            ", ".join(others),
        )


#: Builds a zipapp again with its program filter (artifact name, ProgramFilter.encode()).
Rebuild = Callable[[str, str], tuple[Path, ArtifactRecord, BuiltArtifact]]


def _rebuilder(ctx: _Context, plans: list[Plan], work_root: Path) -> Rebuild:
    by_name = {p.artifact_name(ctx.recipe): p for p in plans}

    def rebuild(name: str, program: str) -> tuple[Path, ArtifactRecord, BuiltArtifact]:
        p = replace(by_name[name], seccomp_filter=program)
        return _build_one(ctx, p, work_root / f"armed-{name}")

    return rebuild


def _arm_filters(
    built: list[tuple[Path, ArtifactRecord]],
    proofs: dict[str, checks_run.ArtifactChecks],
    results: list[BuiltArtifact],
    recipe: Recipe,
    *,
    cache: Cache,
    work: Path,
    rebuild: Rebuild,
) -> tuple[
    list[tuple[Path, ArtifactRecord]], dict[str, checks_run.ArtifactChecks], list[BuiltArtifact]
]:
    """``seccomp = "enforce"``: give each artifact that installs its own filter the filters
    its checks recorded, then run the checks again against it (they must pass under the
    filters). A native binary's two filters are written into its seccomp slot in place; a
    zipapp is built again with its program filter in its boot module
    (backends/zipapp_seccomp.py). The armed file is the artifact from here on."""
    from .backends.zipapp_seccomp import ProgramFilter
    from .seccomp import slot

    work.mkdir(parents=True, exist_ok=True)
    armed: list[tuple[Path, ArtifactRecord]] = []
    rebuilt: dict[str, BuiltArtifact] = {}
    for source, record in built:
        own = record.inputs["settings"].get("seccomp")
        if own not in ("slot", "boot"):
            continue
        calls = proofs[record.name].syscalls
        if calls is None:
            raise CheckFailed(
                f"{record.name}: its checks recorded no system calls, so there is no profile "
                "to enforce ("
                + (proofs[record.name].not_run or "no place here records them")
                + ")",
                hint="run the build where the checks run and strace is installed, or write "
                'seccomp = "record"',
            )
        program = calls.program_profile()
        if program is None:
            raise CheckFailed(f"{record.name}: its checks' calls were not recorded in stages")
        if own == "boot":
            carried = ProgramFilter(
                bpf=slot.program_bpf(program).hex(),
                calls=len(program.calls),
                execs=program.may_exec(),
                forks=not program.threads_only,
            )
            again_path, again_record, rebuilt[record.name] = rebuild(record.name, carried.encode())
            armed.append((again_path, again_record))
            log.info(
                "%s: built again with its program's seccomp filter (%d calls, %s, %s)",
                record.name,
                len(program.calls),
                "may start programs" if program.may_exec() else "starts no program",
                "threads only" if program.threads_only else "may fork",
                extra={"step": "check"},
            )
            continue
        dest = work / record.name
        written = slot.arm(source, dest, calls.profile((record.name,)), program)
        stage = written.program
        log.info(
            "%s: seccomp filters written (bootstrap: %d calls allowed on %s, %d BPF "
            "instructions%s; program: %d calls, %s, %s)",
            record.name,
            written.calls,
            written.arch,
            written.instructions,
            f"; socket() only for {', '.join(written.families)}" if written.families else "",
            stage.calls if stage else 0,
            "may start programs" if stage and stage.execs else "starts no program",
            "may fork" if stage and stage.forks else "threads only",
            extra={"step": "check"},
        )
        armed.append((dest, replace(record, sha256=sha256_file(dest), size=dest.stat().st_size)))
    log.info("running the checks again, under the filters", extra={"step": "check"})
    again_root = checks_run.plain_temp_dir()
    try:
        again = checks_run.run_checks(
            armed, recipe.checks, cache, again_root, recipe_path=recipe.path
        )
    finally:
        shutil.rmtree(again_root, ignore_errors=True)
    by_name = {r.name: (path, r) for path, r in armed}
    proofs = {
        name: replace(again[name], syscalls=proof.syscalls) if name in again else proof
        for name, proof in proofs.items()
    }
    results = [
        rebuilt[b.name] if b.name in rebuilt
        else replace(b, sha256=by_name[b.name][1].sha256, size=by_name[b.name][1].size,
                     path=by_name[b.name][0])
        if b.name in by_name else b
        for b in results
    ]  # fmt: skip
    return [by_name.get(r.name, (s, r)) for s, r in built], proofs, results


def plan(
    recipe: Recipe,
    want_targets: list[str],
    want_formats: list[str],
    *,
    wheelhouse: Path | None = None,
) -> tuple[list[Plan], list[Refusal]]:
    """The (target x format) builds asked for, and the ones this host skips."""
    backends = registry()
    specs = [recipe.target(t) for t in want_targets] if want_targets else list(recipe.targets)
    for fmt in want_formats:
        if fmt not in recipe.formats:
            raise InputError(
                f"format {fmt!r} is not in {recipe.path} [formats]"
                f"{did_you_mean(fmt, recipe.formats)}",
                hint="formats in this recipe: " + ", ".join(recipe.formats),
            )
    plans: list[Plan] = []
    skipped: list[Refusal] = []
    fatal: list[Refusal] = []
    for spec in specs:
        target = targets.get(spec.name)
        no_native = native.unavailable(recipe, target, spec.python, wheelhouse)
        for fmt in want_formats or list(recipe.formats):
            backend = backends[fmt]
            why = backend.refusal(target, spec.python) or no_native
            if why is None:
                plans.append(
                    Plan(
                        target=target,
                        python=spec.python,
                        backend=backend,
                        options=recipe.options(fmt),
                    )
                )
                continue
            refusal = Refusal(target=spec.name, format=fmt, reason=why)
            explicit = spec.name in want_targets and fmt in want_formats
            (fatal if explicit else skipped).append(refusal)
    if fatal or not plans:
        refused = fatal or skipped
        raise InputError(
            "cannot build here: " + "; ".join(map(str, refused)),
            hint="leave these out, or build them where the message says",
        )
    for refusal in skipped:  # the result lists them; this says so before the long work
        log.info("skipping %s", refusal)
    return plans, skipped


def foreign_files(
    out: Path, recipe: Recipe, names: list[str], lock_paths: dict[str, Path], cache: Cache
) -> list[tuple[str, str]]:
    """The files of ``out`` a build of ``names`` keeps without vouching for them."""
    if not out.is_dir():
        return []
    return vouch.foreign(out, recipe, names, lock_paths, cache)


def check_locks(recipe: Recipe, plans: list[Plan], lockfiles: Path | None) -> dict[str, Path]:
    """Lock path per target; fails (exit 1) when a lock is missing, stale or unpinned."""
    specs = {p.target.name: TargetSpec(name=p.target.name, python=p.python) for p in plans}
    problems = lock.check_targets(recipe, list(specs.values()), lockfiles)
    if problems:
        raise lock.check_failed(problems, recipe.root)
    return {name: lock.lock_path(recipe, name, lockfiles) for name in specs}


#: What a recipe's sources may hold: an ops script's package, not a file system.
MAX_SOURCE_FILES = 5000
MAX_SOURCE_FILE = 16 << 20
MAX_SOURCES = 64 << 20


def stage_sources(recipe: Recipe, dest: Path) -> str:
    """Copy the recipe's sources into ``dest`` with normalised modes; return their digest."""
    digest = hashlib.sha256()
    seen: dict[str, Path] = {}
    root = recipe.root.resolve()
    total = 0
    for src in recipe.sources:
        base = recipe.root / src
        for path in sorted(base.rglob("*")):
            rel = path.relative_to(base)
            if any(part in _SKIP or part.startswith(".") for part in rel.parts):
                continue
            if path.is_symlink() and not path.resolve().is_relative_to(root):
                raise RecipeError(
                    f"{recipe.path}: [recipe].sources: {path} is a symbolic link to "
                    f"{path.resolve()}, outside the recipe folder",
                    hint="copy the file into the recipe folder, or remove the link",
                )
            if path.suffix in (".pyc", ".pyo") or not path.is_file():
                continue
            size = path.stat().st_size
            total += size
            if size > MAX_SOURCE_FILE or total > MAX_SOURCES or len(seen) >= MAX_SOURCE_FILES:
                raise RecipeError(
                    f"{recipe.path}: [recipe].sources: too big to be a script's sources "
                    f"(limits: {MAX_SOURCE_FILES} files, {MAX_SOURCE_FILE >> 20} MiB per file, "
                    f"{MAX_SOURCES >> 20} MiB in all; reached at {path}, {size} bytes)",
                    hint="point sources at the script's package folder, not a whole tree; "
                    "data files belong in a dependency or next to the artifact",
                )
            key = rel.as_posix()
            if key in seen or key in (MEMBER, f"{launcher.BOOT_MODULE}.py"):
                raise RecipeError(
                    f"{recipe.path}: [recipe].sources: {key} is in more than one source "
                    f"folder ({seen.get(key, '?')} and {path})"
                )
            seen[key] = path
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            data = path.read_bytes()
            target.write_bytes(data)
            target.chmod(0o644)
            digest.update(key.encode() + b"\0" + hashlib.sha256(data).digest())
    for folder in [dest, *(p for p in dest.rglob("*") if p.is_dir())]:
        folder.chmod(0o755)
    return "sha256:" + digest.hexdigest()


@cache
def toolkit_digest() -> str:
    """Digest of buildkit's own code and data: a changed backend never reuses old outputs."""
    return tree_digest(Path(__file__).parent)


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".toml", ".json", ".c", ".h"):
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def action_key(p: Plan, info: BuildInfo, pins: str) -> str:
    """The key of an artifact in the action cache: toolkit, backend, target, build info
    (sources, lock file and wheel digests, settings) and the digest of the lock's pins."""
    doc = {
        "v": ACTION_KEY_VERSION,
        "pins": pins,
        "toolkit": toolkit_digest(),
        "backend": p.backend.name,
        "target": repr(p.target),
        "info": info.to_json(),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def payload_listing(folder: Path | None) -> dict[str, str]:
    """Every file packed inside a native artifact, with its sha256 (for the manifest)."""
    if folder is None:
        return {}
    return {
        p.relative_to(folder).as_posix(): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@dataclass(frozen=True, kw_only=True)
class _Context:
    recipe: Recipe
    cache: Cache
    lock_paths: dict[str, Path]
    locks: dict[str, lock.Lockfile]
    wheels: dict[str, tuple[wheelhouse.Wheel, ...]]
    native: dict[str, tuple[wheelhouse.Wheel, ...]]  # the recipe's own native packages
    out: Path


def _requirements(
    locked: lock.Lockfile,
    wheels: tuple[wheelhouse.Wheel, ...],
    own: tuple[wheelhouse.Wheel, ...],
    work: Path,
) -> Path:
    """What the backends' tools read: rebuilt from the parsed pins, each with the hash of
    the one verified wheel chosen for it, plus each native package pinned to the wheel
    built or found for it. Never the lock file itself: nothing in it but what buildkit
    parsed and checked reaches pip or pex."""
    chosen = {w.name: w for w in wheels}
    pins = [r.pin([chosen[r.name].sha256]) for r in locked.requirements]
    pins += [f"{w.name}=={w.version} --hash=sha256:{w.sha256}\n" for w in own]
    path = work / "requirements.txt"
    path.write_text("".join(pins), encoding="utf-8")
    return path


def check_closure(
    recipe: Recipe,
    p: Plan,
    lock_path: Path,
    wheels: tuple[wheelhouse.Wheel, ...],
    own: tuple[wheelhouse.Wheel, ...],
) -> None:
    """Fail (exit 1) when the pins are not exactly what the recipe needs on this target,
    read from the verified wheels' metadata (see :mod:`buildkit.closure`)."""
    pinned: dict[str, closure.Dist] = {}
    for w in wheels:
        dist = closure.read_dist(w.path)
        if (dist.name, dist.version) != (w.name, w.version):
            raise CheckFailed(
                f"{lock_path}: the wheel {w.filename} pinned for {w.name}=={w.version} "
                f"says it is {dist.name} {dist.version}",
                hint="lock again with `buildkit lock`; do not use this file",
            )
        pinned[w.name] = dist
    found = closure.problems(
        roots=recipe.requirements,
        own=[closure.read_dist(w.path) for w in own],
        pinned=pinned,
        env=p.target.marker_environment(p.python),
    )
    if found:
        raise lock.check_failed((f"{lock_path}: {f}" for f in found), recipe.root)


def _matching(hit: CachedArtifact | None, info: BuildInfo) -> CachedArtifact | None:
    """A cached artifact only when the build info inside it is the one this build would
    embed: an action entry in a shared cache that points at another artifact (another
    recipe, lock, target or settings) is a miss, with a warning, never published."""
    if hit is None:
        return None
    want = json.loads(info.to_json())
    try:
        inside = buildinfo.read(hit.path)
    except InputError as exc:
        inside = {"unreadable": str(exc)}
    if inside != want:
        differs = sorted(k for k in set(inside) | set(want) if inside.get(k) != want.get(k))
        log.warning(
            "cached artifact %s does not carry this build's info (%s differ); building again",
            hit.path,
            ", ".join(differs[:6]),
        )
        return None
    return hit


def _trace(
    recipe: Recipe,
    app: Path,
    wheels: tuple[wheelhouse.Wheel, ...],
    requirements: Path,
    work: Path,
    *,
    target: targets.Target,
    cache: Cache,
) -> checks_trace.Trace:
    """What the recipe's checks import and read, run under the build's Python."""
    from .backends.nuitka import install_site, trace_python

    folder = work / "trace"
    folder.mkdir()
    python = trace_python(target, cache)
    site = install_site(wheels, requirements, folder, what="the trace", python=python)
    checks = [c for c in recipe.checks if c.applies_to(target.name)]
    return checks_trace.trace(
        recipe.entry, app, site, checks, folder, python=python, recipe_path=recipe.path
    )


def _build_one(ctx: _Context, p: Plan, work: Path) -> tuple[Path, ArtifactRecord, BuiltArtifact]:
    started = time.monotonic()
    recipe = ctx.recipe
    name = p.artifact_name(recipe)
    app = work / "app"
    app.mkdir(parents=True)
    sources_digest = stage_sources(recipe, app)
    lock_path = ctx.lock_paths[p.target.name]
    own = ctx.native[p.target.name]
    wheels = ctx.wheels[p.target.name] + own
    requirements = _requirements(ctx.locks[p.target.name], ctx.wheels[p.target.name], own, work)
    options = p.options
    if options.get("trace", "off") != "off":
        options = checks_trace.apply(
            options,
            _trace(recipe, app, wheels, requirements, work, target=p.target, cache=ctx.cache),
        )
    settings = p.backend.settings(p.target, options, recipe.hardening)
    if p.seccomp_filter:
        settings["seccomp_filter"] = (
            "sha256:" + hashlib.sha256(p.seccomp_filter.encode()).hexdigest()
        )
    info = BuildInfo(
        recipe=recipe.name,
        version=recipe.version,
        target=p.target.name,
        format=p.backend.name,
        python=p.python,
        entry=recipe.entry,
        lock_digest=lock.file_digest(lock_path),
        sources_digest=sources_digest,
        wheels=tuple(f"{w.filename} sha256:{w.sha256}" for w in wheels),
        native=tuple(w.name for w in own),
        toolkit=__version__,
        tools=tuple(sorted(p.backend.tool_versions(p.target).items())),
        settings=tuple(sorted(settings.items())),
    )
    (app / MEMBER).write_text(info.to_json(), encoding="utf-8")
    (app / MEMBER).chmod(0o644)
    key = action_key(p, info, lock.pins_digest(ctx.locks[p.target.name].requirements))
    hit = _matching(ctx.cache.lookup_artifact(key), info)
    if hit is not None and settings.get("contents") == "lock" and hit.facts is None:
        hit = None  # kept without its parity proof (an older cache): build and prove it
    if hit is None:
        output = p.backend.build(
            BuildJob(
                name=name,
                entry=recipe.entry,
                target=p.target,
                python=p.python,
                lockfile=requirements,
                wheels=wheels,
                app_dir=app,
                settings=settings,
                info_digest=hashlib.sha256(info.to_json().encode()).hexdigest(),
                cache=ctx.cache,
                seccomp_filter=p.seccomp_filter,
            ),
            work,
        )
        proved = None
        if output.parity is not None:
            proved = {
                "modules": output.parity.modules,
                "data": output.parity.data,
                "skipped": output.parity.skipped,
            }
        hit_or_new = ctx.cache.store_artifact(key, output.artifact, output.payload, proved)
    else:
        hit_or_new = hit
    source, digest, payload = hit_or_new.path, hit_or_new.sha256, hit_or_new.payload
    record = ArtifactRecord(
        name=name,
        recipe=recipe.name,
        version=recipe.version,
        target=p.target.name,
        format=p.backend.name,
        python=p.python,
        sha256=digest,
        size=source.stat().st_size,
        lock=f"lockfiles/{recipe.name}/{lock_path.name}",
        lock_digest=info.lock_digest,
        inputs={
            "sources_digest": sources_digest,
            "wheels": list(info.wheels),
            "native": list(info.native),
            "tools": dict(info.tools),
            "settings": settings,
            "toolkit": __version__,
            "recipe_digest": "sha256:" + sha256_file(recipe.path),
        },
        payload=payload_listing(payload),
        parity=hit_or_new.facts,
    )
    built = BuiltArtifact(
        name=name,
        target=p.target.name,
        format=p.backend.name,
        sha256=digest,
        size=record.size,
        path=ctx.out / name,
        reused=hit is not None,
        seconds=time.monotonic() - started,
        payload=payload,
    )
    return source, record, built


def build(
    recipe: Recipe,
    *,
    want_targets: list[str],
    want_formats: list[str],
    out: Path,
    cache: Cache,
    offline: bool = False,
    lockfiles: Path | None = None,
    sign_key: Path | None = None,
    wheelhouse_dir: Path | None = None,
    keep_foreign: bool = False,
    baseline: Baseline | None = None,
) -> BuildResult:
    if sign_key is not None:
        sign.check_key(sign_key)
    plans, skipped = plan(recipe, want_targets, want_formats, wheelhouse=wheelhouse_dir)
    lock_paths = check_locks(recipe, plans, lockfiles)
    kept: list[tuple[str, str]] = []
    if sign_key is not None:  # only a signing build reads (and hashes) what --out holds
        names = [p.artifact_name(recipe) for p in plans]
        kept = foreign_files(out, recipe, names, lock_paths, cache)
    if kept and not keep_foreign:
        raise CheckFailed(
            f"will not sign {out / 'SHA256SUMS'}: it would also sign {len(kept)} file(s) this "
            f"build did not produce: {vouch.describe(kept)}",
            hint="build into an empty --out, remove those files, or pass --keep-foreign to "
            "sign such artifacts anyway (recorded in manifest.json; a document no artifact "
            "calls for is dropped, never signed); nothing was built or written",
        )
    cache.sweep_tmp()
    work_root = cache.tmp_dir()
    try:
        wheels: dict[str, tuple[wheelhouse.Wheel, ...]] = {}
        locks = {name: lock.read(path) for name, path in lock_paths.items()}
        total = len(lock_paths)
        log.info(
            "checking wheels for %d target(s)",
            total,
            extra={"progress": (0, total), "step": "fetch"},
        )
        for done, name in enumerate(lock_paths, 1):
            p = next(p for p in plans if p.target.name == name)
            wheels[name] = wheelhouse.ensure(
                locks[name], p.target, p.python, cache, offline=offline
            )
            log.info(
                "wheels for %s: %d verified",
                name,
                len(wheels[name]),
                extra={"progress": (done, total), "step": "fetch"},
            )
        own = {
            name: native.wheels(
                recipe,
                p.target,
                p.python,
                work_root / f"native-{name}",
                wheelhouse_dir,
            )
            for name, p in {p.target.name: p for p in plans}.items()
        }
        for name, p in {p.target.name: p for p in plans}.items():
            check_closure(recipe, p, lock_paths[name], wheels[name], own[name])
            entry.check(recipe, wheels[name] + own[name])
        ctx = _Context(
            recipe=recipe,
            cache=cache,
            lock_paths=lock_paths,
            locks=locks,
            wheels=wheels,
            native=own,
            out=out,
        )
        built: list[tuple[Path, ArtifactRecord]] = []
        results: list[BuiltArtifact] = []
        total = len(plans)
        log.info("building %d artifact(s)", total, extra={"progress": (0, total), "step": "build"})
        for index, p in enumerate(plans, 1):
            source, record, result = _build_one(ctx, p, work_root / str(index))
            built.append((source, record))
            results.append(result)
            log.info(
                "%s %s (%.1f s)",
                "reused" if result.reused else "built",
                result.name,
                result.seconds,
                extra={"progress": (index, total), "step": "build"},
            )
        log.info("running the recipe's checks", extra={"step": "check"})
        _warn_thin(recipe)
        check_root = checks_run.plain_temp_dir()
        try:
            proofs = checks_run.run_checks(
                built,
                recipe.checks,
                cache,
                check_root,
                recipe_path=recipe.path,
                seccomp=seccomp_of(recipe),
            )
        finally:
            shutil.rmtree(check_root, ignore_errors=True)
        _warn_unfiltered(recipe, built)
        if any(r.inputs["settings"].get("seccomp") in ("slot", "boot") for _, r in built):
            built, proofs, results = _arm_filters(
                built, proofs, results, recipe, cache=cache, work=work_root / "armed",
                rebuild=_rebuilder(ctx, plans, work_root),
            )  # fmt: skip
        built = [
            (source, replace(record, checks=proofs[record.name].record()))
            for source, record in built
        ]
        stem = f"{recipe.name}-{recipe.version}"
        released = stage.release(
            out,
            built,
            policies={stem: policy_of(recipe)},
            sign_key=sign_key,
            unvouched=dict(kept),
            baseline=baseline,
        )
    finally:
        shutil.rmtree(work_root, ignore_errors=True)
    return BuildResult(
        out=out,
        artifacts=tuple(results),
        skipped=tuple(skipped),
        checksums=released.checksums,
        manifest=released.manifest,
        gate=released.gates[stem],
        reports=released.reports,
        signature=released.signature,
        checks=proofs,
    )
