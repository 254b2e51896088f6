"""buildkit build: build a recipe's artifacts into a release folder."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from .common import (
    add_cache_dir,
    add_common,
    add_formats,
    add_recipe,
    cache,
    load_recipe,
    show,
)

if TYPE_CHECKING:
    from ..build import BuildResult
    from ..hosts.builder import Delegated
    from ..recipe import Recipe


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_common(p)
    add_recipe(p)
    add_formats(p)
    p.add_argument("--out", type=Path, default=Path("dist"), metavar="DIR", help="default: dist")
    p.add_argument("--offline", action="store_true", help="use only wheels already in the cache")
    add_cache_dir(p, "default: $BUILDKIT_CACHE_DIR or ~/.cache/buildkit")
    p.add_argument(
        "--wheelhouse",
        type=Path,
        metavar="DIR",
        help="wheels of the recipe's native packages for targets this host cannot compile "
        "them for (cibuildwheel's output; see cibuildwheel-config)",
    )
    p.add_argument(
        "--sign-key",
        type=Path,
        metavar="KEY",
        help="OpenSSH private key: sign SHA256SUMS into SHA256SUMS.sig (ssh-keygen -Y sign); "
        "refused when --out holds files this build cannot vouch for (another recipe or "
        "lock, not built with this cache)",
    )
    p.add_argument(
        "--keep-foreign",
        action="store_true",
        help="with --sign-key: sign such files anyway; each is marked 'unvouched' in manifest.json",
    )
    p.add_argument(
        "--baseline",
        type=Path,
        metavar="DIR",
        help="an earlier release folder: the hardening reports compare with its "
        "NAME-VERSION.hardening.json (new failures, fixed, unchanged; SARIF baselineState)",
    )
    p.add_argument(
        "--builder",
        metavar="HOST",
        help="run the build inside this emulated host (see `buildkit host`): native "
        "binaries for its target, e.g. --builder linux-arm64 --format nuitka",
    )


def run(args: argparse.Namespace) -> int:
    recipe = load_recipe(args.recipe)
    baseline = None
    if args.baseline is not None:
        if args.builder:
            from ..errors import InputError

            raise InputError(
                "--baseline does not go with --builder (the reports are written inside the "
                "emulated host)",
                hint="build, then run: buildkit audit --baseline OLD_DIR --policy RECIPE "
                "--format md,sarif --out DIR ARTIFACT…",
            )
        from ..audit.baseline import load

        baseline = load(args.baseline)  # before building: a bad folder wastes no work
    if args.builder:
        return _on_host(args, recipe)
    from ..build import build

    result = build(
        recipe,
        want_targets=args.target,
        want_formats=args.format,
        out=args.out,
        cache=cache(args),
        offline=args.offline,
        lockfiles=args.lockfiles,
        sign_key=args.sign_key,
        wheelhouse_dir=args.wheelhouse,
        keep_foreign=args.keep_foreign,
        baseline=baseline,
    )
    return show(args, result, _print)


def _on_host(args: argparse.Namespace, recipe: Recipe) -> int:
    from .. import hosts
    from ..hosts.builder import build_on
    from ..request import BuildRequest

    spec = hosts.get(args.builder)
    request = BuildRequest(
        recipe=args.recipe,
        out=args.out,
        targets=tuple(args.target),
        formats=tuple(args.format),
        lockfiles=args.lockfiles,
        wheelhouse=args.wheelhouse,
        offline=args.offline,
        verbose=args.verbose,
    )
    done = build_on(
        spec,
        request,
        recipe,
        cache(args),
        sign_key=args.sign_key,
        keep_foreign=args.keep_foreign,
    )
    return show(args, done, _print_delegated)


def _print_delegated(done: Delegated) -> None:
    for name in done.artifacts:
        print(f"wrote  {done.out / name}")
    if done.signature:
        print(f"signature:  {done.signature}")
    print(f"built on the emulated host {done.builder}; the release folder verifies")


def _print(result: BuildResult) -> None:
    from ..audit.report import gate_line

    width = max(len(a.name) for a in result.artifacts)
    for a in result.artifacts:
        how = "reused" if a.reused else "built "
        print(f"{how}  {a.name:<{width}}  {a.size / 1e6:7.2f} MB  sha256:{a.sha256[:16]}…")
    for r in result.skipped:
        print(f"skipped {r}")
    print()
    for name, proof in result.checks.items():
        if proof.not_run:
            print(f"checks not run  {name}: {proof.not_run}")
        for run in proof.runs:
            print(f"checks {proof.status:<8} {name}: {len(run.outcomes)} on {run.where}")
    print(f"\nartifacts:  {result.out}/")
    print(f"checksums:  {result.checksums}")
    if result.signature:
        print(f"signature:  {result.signature}")
    print(f"manifest:   {result.manifest}")
    for path in result.reports:
        print(f"hardening:  {path}")
    print(gate_line(result.gate))
    print(
        f"check with: buildkit verify {result.out}  "
        f"(or: cd {result.out} && sha256sum -c SHA256SUMS)"
    )
