"""`buildkit build`: lock check, fetch, build (or reuse), release into dist/."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from . import __version__, lock, targets, wheelhouse
from .backends import Backend, BuildJob, registry
from .buildinfo import MEMBER, BuildInfo
from .cache import Cache
from .errors import CheckFailed, InputError, RecipeError
from .recipe import Recipe, TargetSpec, did_you_mean
from .release.manifest import ArtifactRecord
from .release.publish import publish

log = logging.getLogger(__name__)

_SKIP = {"__pycache__", ".git", ".mypy_cache", ".pytest_cache"}
ACTION_KEY_VERSION = "1"


@dataclass(frozen=True, kw_only=True)
class Plan:
    target: targets.Target
    python: str
    backend: Backend

    def artifact_name(self, recipe: Recipe) -> str:
        return f"{recipe.name}-{recipe.version}-{self.target.name}{self.backend.suffix}"


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


@dataclass(frozen=True, kw_only=True)
class BuildResult:
    out: Path
    artifacts: tuple[BuiltArtifact, ...]
    checksums: Path
    manifest: Path


def plan(recipe: Recipe, want_targets: list[str], want_formats: list[str]) -> list[Plan]:
    """The (target x format) builds asked for, validated against the recipe."""
    backends = registry()
    specs = [recipe.target(t) for t in want_targets] if want_targets else list(recipe.targets)
    for fmt in want_formats:
        if fmt not in recipe.formats:
            raise InputError(
                f"format {fmt!r} is not in {recipe.path} [formats]"
                f"{did_you_mean(fmt, recipe.formats)}",
                hint="formats in this recipe: " + ", ".join(recipe.formats),
            )
    formats = want_formats or list(recipe.formats)
    plans = [
        Plan(target=targets.get(spec.name), python=spec.python, backend=backends[fmt])
        for spec in specs
        for fmt in formats
    ]
    refusals = [
        f"{p.backend.name} for {p.target.name}: {why}"
        for p in plans
        if (why := p.backend.refusal(p.target))
    ]
    if refusals:
        raise InputError("cannot build here: " + "; ".join(refusals))
    return plans


def check_locks(recipe: Recipe, plans: list[Plan], lockfiles: Path | None) -> dict[str, Path]:
    """Lock path per target; fails (exit 1) when a lock is missing, stale or unpinned."""
    specs = {p.target.name: TargetSpec(name=p.target.name, python=p.python) for p in plans}
    problems = lock.check_targets(recipe, list(specs.values()), lockfiles)
    if problems:
        raise CheckFailed(
            "lock check failed:\n" + "\n".join(f"  {pr}" for pr in problems),
            hint=f"run `buildkit lock {recipe.root}` and commit the lockfiles",
        )
    return {name: lock.lock_path(recipe, name, lockfiles) for name in specs}


def stage_sources(recipe: Recipe, dest: Path) -> str:
    """Copy the recipe's sources into ``dest`` with normalised modes; return their digest."""
    digest = hashlib.sha256()
    seen: dict[str, Path] = {}
    for src in recipe.sources:
        base = recipe.root / src
        for path in sorted(base.rglob("*")):
            rel = path.relative_to(base)
            if any(part in _SKIP or part.startswith(".") for part in rel.parts):
                continue
            if path.suffix in (".pyc", ".pyo") or not path.is_file():
                continue
            key = rel.as_posix()
            if key in seen or key == MEMBER:
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
        if path.is_file() and path.suffix in (".py", ".toml", ".json"):
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def action_key(p: Plan, info: BuildInfo) -> str:
    doc = {
        "v": ACTION_KEY_VERSION,
        "toolkit": toolkit_digest(),
        "backend": p.backend.name,
        "target": repr(p.target),
        "info": info.to_json(),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def build(
    recipe: Recipe,
    *,
    want_targets: list[str],
    want_formats: list[str],
    out: Path,
    cache: Cache,
    offline: bool = False,
    lockfiles: Path | None = None,
) -> BuildResult:
    plans = plan(recipe, want_targets, want_formats)
    lock_paths = check_locks(recipe, plans, lockfiles)
    work_root = cache.tmp_dir()
    try:
        wheels: dict[str, tuple[wheelhouse.Wheel, ...]] = {}
        log.info(
            "checking wheels for %d target(s)",
            len(lock_paths),
            extra={"progress": (0, len(lock_paths)), "step": "fetch"},
        )
        for done, (name, path) in enumerate(lock_paths.items(), 1):
            p = next(p for p in plans if p.target.name == name)
            wheels[name] = wheelhouse.ensure(
                lock.read(path), p.target, p.python, cache, offline=offline
            )
            log.info(
                "wheels for %s: %d verified",
                name,
                len(wheels[name]),
                extra={"progress": (done, len(lock_paths)), "step": "fetch"},
            )
        built: list[tuple[Path, ArtifactRecord]] = []
        results: list[BuiltArtifact] = []
        log.info(
            "building %d artifact(s)",
            len(plans),
            extra={"progress": (0, len(plans)), "step": "build"},
        )
        for index, p in enumerate(plans, 1):
            started = time.monotonic()
            name = p.artifact_name(recipe)
            work = work_root / f"{index}"
            app = work / "app"
            app.mkdir(parents=True)
            sources_digest = stage_sources(recipe, app)
            lock_path = lock_paths[p.target.name]
            info = BuildInfo(
                recipe=recipe.name,
                version=recipe.version,
                target=p.target.name,
                format=p.backend.name,
                python=p.python,
                entry=recipe.entry,
                lock_digest=lock.file_digest(lock_path),
                sources_digest=sources_digest,
                wheels=tuple(f"{w.filename} sha256:{w.sha256}" for w in wheels[p.target.name]),
                toolkit=__version__,
                tools=tuple(sorted(p.backend.tool_versions().items())),
            )
            (app / MEMBER).write_text(info.to_json(), encoding="utf-8")
            (app / MEMBER).chmod(0o644)
            key = action_key(p, info)
            hit = cache.lookup_artifact(key)
            if hit is None:
                artifact = p.backend.build(
                    BuildJob(
                        entry=recipe.entry,
                        target=p.target,
                        python=p.python,
                        lockfile=lock_path,
                        wheels=wheels[p.target.name],
                        app_dir=app,
                        cache=cache,
                    ),
                    work,
                )
                digest = cache.store_artifact(key, artifact)
                source = artifact
            else:
                source, digest = hit
            seconds = time.monotonic() - started
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
                    "tools": dict(info.tools),
                    "toolkit": __version__,
                },
            )
            built.append((source, record))
            results.append(
                BuiltArtifact(
                    name=name,
                    target=p.target.name,
                    format=p.backend.name,
                    sha256=digest,
                    size=record.size,
                    path=out / name,
                    reused=hit is not None,
                    seconds=seconds,
                )
            )
            log.info(
                "%s %s (%.1f s)",
                "reused" if hit else "built",
                name,
                seconds,
                extra={"progress": (index, len(plans)), "step": "build"},
            )
        sums, manifest_path = publish(out, built)
    finally:
        shutil.rmtree(work_root, ignore_errors=True)
    return BuildResult(out=out, artifacts=tuple(results), checksums=sums, manifest=manifest_path)
