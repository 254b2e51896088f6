"""Thin command layer: parse, call the library, render, exit code.

Exit codes: 0 ok, 1 a check failed (stale lock, verification, policy), 2 bad input or
usage, 3 a tool failed.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from . import __version__, buildinfo, cibw, hosts, lock, targets
from .audit import output
from .audit.findings import ALL_CHECKS
from .audit.policy import GateResult, evaluate
from .audit.report import gate_line, policy_document
from .audit.run import AuditResult, audit_paths
from .backends import format_options, registry
from .build import BuildResult, build, foreign_files
from .cache import Cache, default_root
from .errors import BuildkitError, CheckFailed, InputError, Stopped
from .fsutil import atomic_write_text, output_errors
from .hosts import store as host_store
from .hosts.builder import Request as BuilderRequest
from .hosts.builder import build_on
from .hosts.runon import run_on
from .recipe import Recipe, load_policy
from .recipe import load as load_recipe
from .release.assemble import assemble
from .release.sign import check_key
from .release.sign import sign as sign_release
from .release.verify import verify
from .release.vouch import describe as describe_foreign
from .repro import check as repro_check
from .repro import repro
from .ui import print_error, setup_logging

EPILOG = "Exit codes: 0 ok, 1 check failed, 2 bad input or usage, 3 a tool failed."


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", help="log every command run")
    common.add_argument("--json", action="store_true", help="print a JSON result on stdout")

    p = argparse.ArgumentParser(
        prog="buildkit",
        description="Compile Python ops scripts into reproducible single-file artifacts "
        "(Nuitka native binaries, pex and shiv zipapps) for every target, from hash-pinned "
        "lockfiles, with their hardening audited.",
        epilog=EPILOG,
    )
    p.add_argument("--version", action="version", version=f"buildkit {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    recipe_args = argparse.ArgumentParser(add_help=False)
    recipe_args.add_argument(
        "recipe", type=Path, metavar="RECIPE", help="recipe folder or recipe.toml"
    )
    recipe_args.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="T",
        help="repeatable; one of: " + ", ".join(targets.all_targets()) + " (default: the recipe's)",
    )
    recipe_args.add_argument(
        "--lockfiles",
        type=Path,
        metavar="DIR",
        help="lockfiles folder (default: lockfiles/ of the project holding the recipe)",
    )

    lk = sub.add_parser(
        "lock",
        parents=[common, recipe_args],
        help="write hash-pinned lockfiles/<recipe>/<target>.txt",
        description="Resolve the recipe's requirements for each target and write "
        "lockfiles/<recipe>/<target>.txt: every requirement pinned == with every file hash, "
        "under a header recording the digest of the inputs and the engine. With --check, "
        "write nothing and fail (exit 1) if a lock is missing, stale, unpinned or unhashed.",
        epilog=EPILOG,
    )
    lk.add_argument("--check", action="store_true", help="check the locks, write nothing")
    lk.add_argument(
        "--engine",
        choices=lock.ENGINES,
        default="uv",
        help="resolver: uv (any target, default) or pip-tools (this host's target only)",
    )

    bd = sub.add_parser(
        "build",
        parents=[common, recipe_args],
        help="build artifacts into a release folder",
        description="Check the locks, fetch the locked wheels by hash, build every "
        "(target x format) of the recipe (or the ones asked for) and write the artifacts, "
        "manifest.json and SHA256SUMS into the output folder. Every artifact is audited "
        "before it is published: when the recipe's [hardening] gate fails nothing is "
        "published, the audit is written as NAME-VERSION.rejected.hardening.* and the exit "
        "code is 1; otherwise NAME-VERSION.hardening.{json,sarif,md,html} are written too, "
        "with the CycloneDX SBOM (NAME-VERSION.cdx.json) and the SLSA provenance "
        "(NAME-VERSION.intoto.jsonl); --sign-key signs SHA256SUMS. Unchanged builds are "
        "reused from the cache.",
        epilog=EPILOG,
    )
    bd.add_argument(
        "--format",
        action="append",
        default=[],
        metavar="F",
        help="repeatable; one of: " + ", ".join(registry()) + " (default: the recipe's)",
    )
    bd.add_argument("--out", type=Path, default=Path("dist"), metavar="DIR", help="default: dist")
    bd.add_argument("--offline", action="store_true", help="use only wheels already in the cache")
    bd.add_argument(
        "--cache-dir",
        type=Path,
        metavar="DIR",
        help="default: $BUILDKIT_CACHE_DIR or ~/.cache/buildkit",
    )
    bd.add_argument(
        "--wheelhouse",
        type=Path,
        metavar="DIR",
        help="wheels of the recipe's native packages for targets this host cannot compile "
        "them for (cibuildwheel's output; see cibuildwheel-config)",
    )
    bd.add_argument(
        "--sign-key",
        type=Path,
        metavar="KEY",
        help="OpenSSH private key: sign SHA256SUMS into SHA256SUMS.sig (ssh-keygen -Y sign); "
        "refused when --out holds files this build cannot vouch for (another recipe or "
        "lock, not built with this cache)",
    )
    bd.add_argument(
        "--keep-foreign",
        action="store_true",
        help="with --sign-key: sign such files anyway; each is marked 'unvouched' in manifest.json",
    )

    bd.add_argument(
        "--builder",
        metavar="HOST",
        help="run the build inside this emulated host (see `buildkit host`): native "
        "binaries for its target, e.g. --builder linux-arm64 --format nuitka",
    )

    _release_parsers(sub, common, recipe_args)

    aud = sub.add_parser(
        "audit",
        parents=[common],
        help="hardening audit of native files, folders and artifacts",
        description="Audit every native file (ELF and Mach-O, every slice) in the given "
        "files, folders, zipapps (.pex/.pyz members, read without extracting), nuitka "
        ".tar.gz archives and onefile binaries (the native files of their payload): RELRO, "
        "stack canary, NX, PIE, FORTIFY, RPATH/RUNPATH, stripped, CET/BTI; Mach-O PIE, "
        "canary, NX stack and heap, code signature, hardened runtime, __PAGEZERO. Each check "
        "is pass / fail / n/a / unknown with the evidence seen, and each file names its "
        "component (own, interpreter, wheel with version, system). With --policy, the "
        "hardening gate decides the exit code: 0 every required check passes (or is "
        "waived), 1 the gate failed, 2 bad input or an unreadable file.",
        epilog=EPILOG,
    )
    aud.add_argument("paths", type=Path, nargs="+", metavar="PATH")
    aud.add_argument(
        "--format",
        default="table",
        metavar="LIST",
        help="comma-separated: table, json, sarif, md, html (default: table); without "
        "--out, one format is printed on stdout",
    )
    aud.add_argument(
        "--policy",
        type=Path,
        metavar="FILE",
        help="a TOML file with a [hardening] table (require, scope, waivers), or a recipe",
    )
    aud.add_argument(
        "--out", type=Path, metavar="DIR", help="write NAME.hardening.<format> files here"
    )
    aud.add_argument(
        "--name", default="audit", metavar="NAME", help="report file stem (default: audit)"
    )

    ins = sub.add_parser(
        "inspect",
        parents=[common],
        help="print the build info embedded in an artifact",
        description="Print the build info embedded in an artifact (recipe, version, target, "
        "format, lock digest, wheels, tool versions), read from its bytes without running it.",
        epilog=EPILOG,
    )
    ins.add_argument("artifact", type=Path, metavar="ARTIFACT")
    _host_parsers(sub, common)
    return p


def _host_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    """host (create, status, remove) and run-on."""
    names = ", ".join(hosts.all_hosts())
    cache_dir = argparse.ArgumentParser(add_help=False)
    cache_dir.add_argument(
        "--cache-dir",
        type=Path,
        metavar="DIR",
        help="where the roots live, under hosts/ (default: $BUILDKIT_CACHE_DIR or "
        "~/.cache/buildkit)",
    )
    hp = sub.add_parser(
        "host",
        help="emulated hosts of foreign targets (QEMU): create, status, remove",
        description="Emulated hosts are roots of foreign targets (" + names + ") that run "
        "on this machine under QEMU user emulation (binfmt_misc): run artifacts there with "
        "run-on, build native binaries there with build --builder. They need root, "
        "qemu-user-static and (for Debian roots) debootstrap.",
        epilog=EPILOG,
    )
    hsub = hp.add_subparsers(dest="host_command", required=True, metavar="STEP")
    hc = hsub.add_parser(
        "create",
        parents=[common, cache_dir],
        help="make a host's root (reused when a good one exists)",
        description="Make the root of an emulated host in the cache (hosts/NAME/): "
        "linux-arm64 is a Debian bookworm arm64 root made with debootstrap; alpine-arm64 is "
        "a musl aarch64 root holding a CPython cross-compiled from pinned sources. A good "
        "existing root is reused; one that fails its check is made again. Mounts "
        "binfmt_misc and registers QEMU when needed. On any error nothing is kept.",
        epilog=EPILOG,
    )
    hc.add_argument("name", metavar="NAME", help=names)
    hc.add_argument("--force", action="store_true", help="make it again even if it is good")
    hc.add_argument(
        "--mirror", metavar="URL", help="Debian mirror for debootstrap (default: deb.debian.org)"
    )
    hs = hsub.add_parser(
        "status",
        parents=[common, cache_dir],
        help="check the hosts' roots",
        description="Check each host's root (or the ones named): present, made from the "
        "current spec, and its interpreter runs under emulation. Exit 1 when one is not.",
        epilog=EPILOG,
    )
    hs.add_argument("names", nargs="*", metavar="NAME", help=names)
    hr = hsub.add_parser(
        "remove",
        parents=[common, cache_dir],
        help="delete a host's root",
        description="Delete an emulated host's root (and its builder toolkits) from the cache.",
        epilog=EPILOG,
    )
    hr.add_argument("name", metavar="NAME", help=names)

    ro = sub.add_parser(
        "run-on",
        parents=[common, cache_dir],
        help="run an artifact on an emulated host",
        description="Run ARTIFACT (a onefile binary, .pex or .pyz) with ARGS inside the "
        "emulated host HOST, on a throw-away overlay of its root (nothing the program "
        "writes is kept), with /proc, /dev and /sys of this machine and a plain "
        "environment (PATH, HOME=/root, LANG=C.UTF-8, plus --env). stdin, stdout and "
        "stderr pass through. An artifact built for another target is refused. The exit "
        "code is the program's; buildkit's own errors exit 2 or 3 before it starts.",
        epilog=EPILOG,
    )
    ro.add_argument("host", metavar="HOST", help=names)
    ro.add_argument("artifact", type=Path, metavar="ARTIFACT")
    ro.add_argument("args", nargs="*", metavar="ARGS", help="after --: the program's arguments")
    ro.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="repeatable: set a variable for the program",
    )


def _release_parsers(
    sub: Any, common: argparse.ArgumentParser, recipe_args: argparse.ArgumentParser
) -> None:
    """repro, cibuildwheel-config, verify and release (assemble, sign)."""
    rp = sub.add_parser(
        "repro",
        parents=[common, recipe_args],
        help="build twice under varied conditions and compare every file byte for byte",
        description="Build the recipe twice (or --runs N times), each build in a fresh "
        "folder with its own copy of the recipe, output folder and cache (only downloaded "
        "wheels are shared, verified by hash), the later builds under varied conditions: "
        "recipe and output paths, working directory, TZ, umask, locale, HOME, unrelated "
        "environment variables, file creation order, number of CPUs (taskset) and host "
        "name (unshare -u, where permitted). Then compare every release file by sha256. "
        "Exit 0 when all are identical; otherwise run diffoscope on each differing pair, "
        "save its text report in the output folder beside repro.json, and exit 1 naming "
        "the files.",
        epilog=EPILOG,
    )
    rp.add_argument(
        "--format",
        action="append",
        default=[],
        metavar="F",
        help="repeatable; one of: " + ", ".join(registry()) + " (default: the recipe's)",
    )
    rp.add_argument("--runs", type=int, default=2, metavar="N", help="builds (default: 2)")
    rp.add_argument(
        "--out",
        type=Path,
        default=Path("repro"),
        metavar="DIR",
        help="where repro.json and diffoscope reports go (default: repro)",
    )
    rp.add_argument(
        "--cache-dir",
        type=Path,
        metavar="DIR",
        help="whose wheels (and, for the first build, tool caches) are used "
        "(default: $BUILDKIT_CACHE_DIR or ~/.cache/buildkit)",
    )
    rp.add_argument(
        "--perturb",
        metavar="FILE",
        help="append a comment to FILE (relative to the recipe folder) in the later builds: "
        "shows what repro reports when something differs",
    )

    cw = sub.add_parser(
        "cibuildwheel-config",
        parents=[common],
        help="cibuildwheel configuration for a recipe's native packages",
        description="Write the cibuildwheel configuration (a [tool.cibuildwheel] table for "
        "--config-file) that builds the wheels of the recipe's native packages for each of "
        "its targets: exactly the build identifiers the targets need (e.g. "
        "cp312-musllinux_aarch64), their architectures, and for each the recipe's hardening "
        "flags (CFLAGS, LDFLAGS) and SOURCE_DATE_EPOCH. Give buildkit build the wheels with "
        "--wheelhouse DIR.",
        epilog=EPILOG,
    )
    cw.add_argument("recipe", type=Path, metavar="RECIPE", help="recipe folder or recipe.toml")
    cw.add_argument("--out", type=Path, metavar="FILE", help="write here (default: stdout)")

    ver = sub.add_parser(
        "verify",
        parents=[common],
        help="check a release folder: checksums, signature, manifest, SBOM, provenance, gate",
        description="Check a release folder: every file SHA256SUMS lists is present and "
        "matches, no file is present that it does not list, SHA256SUMS.sig is a good "
        "signature (against --allowed-signers and --identity when given), every manifest "
        "entry matches its artifact, the SBOM and the provenance name exactly the manifest's "
        "artifacts with their digests, each zipapp holds exactly the wheels the manifest "
        "records, and the hardening reports record a passed gate. A signature whose signer "
        "was not checked is a warning (WARN), not a pass. One line per check, then a "
        "summary; exit 0 when all pass, 1 otherwise, 2 for a usage error.",
        epilog=EPILOG,
    )
    ver.add_argument("folder", type=Path, metavar="DIR")
    ver.add_argument(
        "--allowed-signers",
        type=Path,
        metavar="FILE",
        help="OpenSSH allowed signers file: check who signed (needs --identity)",
    )
    ver.add_argument(
        "--identity", metavar="ID", help="the signer's identity in that file (needs the file)"
    )
    ver.add_argument(
        "--require-signature",
        action="store_true",
        help="fail when SHA256SUMS.sig is missing (needs --allowed-signers)",
    )
    ver.add_argument(
        "--artifact",
        action="append",
        default=[],
        metavar="NAME",
        help="check only this downloaded artifact (repeatable): its SHA256SUMS line, the "
        "signature, its manifest entry and contents; other release files may be absent",
    )

    rel = sub.add_parser(
        "release",
        help="assemble or sign release folders",
        description="Work on release folders: join per-target folders into one, sign one.",
        epilog=EPILOG,
    )
    rsub = rel.add_subparsers(dest="release_command", required=True, metavar="STEP")
    asm = rsub.add_parser(
        "assemble",
        parents=[common],
        help="join per-target release folders from CI jobs into one release",
        description="Join release folders built by separate jobs (one per target) into one "
        "release in OUT (a new or empty folder): each input must verify; artifacts are "
        "merged by name and the same name with different bytes is refused; one manifest, "
        "SHA256SUMS, SBOM, provenance and hardening reports (every artifact audited again "
        "and gated with the policy the inputs recorded) are written. The result does not "
        "depend on the order of the inputs; on any error nothing is written.",
        epilog=EPILOG,
    )
    asm.add_argument("out", type=Path, metavar="OUT")
    asm.add_argument("inputs", type=Path, nargs="+", metavar="DIR")
    asm.add_argument("--sign-key", type=Path, metavar="KEY", help="sign the merged SHA256SUMS")
    sgn = rsub.add_parser(
        "sign",
        parents=[common],
        help="sign a release folder's SHA256SUMS",
        description="Sign DIR/SHA256SUMS with an OpenSSH key (ssh-keygen -Y sign -n file), "
        "writing DIR/SHA256SUMS.sig. Check with: ssh-keygen -Y verify -f allowed_signers "
        "-I ID -n file -s SHA256SUMS.sig < SHA256SUMS",
        epilog=EPILOG,
    )
    sgn.add_argument("folder", type=Path, metavar="DIR")
    sgn.add_argument("--key", type=Path, required=True, metavar="KEY")


def _recipe(path: Path) -> Recipe:
    return load_recipe(path, formats=format_options(), targets=targets.all_targets())


def _emit_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")


def cmd_lock(args: argparse.Namespace) -> int:
    recipe = _recipe(args.recipe)
    specs = [recipe.target(t) for t in args.target] if args.target else list(recipe.targets)
    if args.check:
        problems = lock.check_targets(recipe, specs, args.lockfiles)
        if args.json:
            _emit_json(
                {
                    "ok": not problems,
                    "lockfiles": str(lock.lock_dir(recipe, args.lockfiles)),
                    "problems": [str(p) for p in problems],
                }
            )
        if problems:
            raise CheckFailed(
                "lock check failed:\n" + "\n".join(f"  {p}" for p in problems),
                hint=f"run `buildkit lock {args.recipe}` and commit the lockfiles",
            )
        if not args.json:
            for spec in specs:
                print(f"ok  {lock.lock_path(recipe, spec.name, args.lockfiles)}")
        return 0
    results = lock.lock_targets(recipe, specs, args.engine, args.lockfiles)
    if args.json:
        _emit_json(
            {
                "ok": True,
                "lockfiles": str(lock.lock_dir(recipe, args.lockfiles)),
                "locks": [asdict(r) for r in results],
            }
        )
    for r in [] if args.json else results:
        print(f"{'wrote' if r.changed else 'unchanged'}  {r.path}  ({r.pins} pins)")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    recipe = _recipe(args.recipe)
    if args.builder:
        return _build_on_host(args, recipe)
    result = build(
        recipe,
        want_targets=args.target,
        want_formats=args.format,
        out=args.out,
        cache=Cache(root=args.cache_dir or default_root()),
        offline=args.offline,
        lockfiles=args.lockfiles,
        sign_key=args.sign_key,
        wheelhouse_dir=args.wheelhouse,
        keep_foreign=args.keep_foreign,
    )
    if args.json:
        _emit_json(_result_json(result))
    else:
        _print_result(result)
    return 0


def _build_on_host(args: argparse.Namespace, recipe: Recipe) -> int:
    spec = hosts.get(args.builder)
    if args.sign_key is not None:
        check_key(args.sign_key)
    request = BuilderRequest(
        recipe=recipe,
        formats=tuple(args.format),
        out=args.out,
        cache=Cache(root=args.cache_dir or default_root()),
        offline=args.offline,
        lockfiles=args.lockfiles,
        wheelhouse=args.wheelhouse,
        verbose=args.verbose,
    )
    done = build_on(spec, request, want_targets=args.target or [spec.target])
    kept = (
        foreign_files(done.out, recipe, list(done.artifacts), {}, request.cache)
        if args.sign_key is not None
        else []
    )
    if kept and not args.keep_foreign:
        raise CheckFailed(
            f"built, but will not sign {done.out / 'SHA256SUMS'}: it would also sign "
            f"{len(kept)} file(s) this build did not produce: {describe_foreign(kept)}",
            hint="build into an empty --out, or pass --keep-foreign to sign them anyway",
        )
    signature = sign_release(done.out, args.sign_key) if args.sign_key is not None else None
    if args.json:
        _emit_json(
            {
                "out": str(done.out),
                "builder": spec.name,
                "written": list(done.artifacts),
                "signature": str(signature) if signature else None,
            }
        )
    else:
        for name in done.artifacts:
            print(f"wrote  {done.out / name}")
        if signature:
            print(f"signature:  {signature}")
        print(f"built on the emulated host {spec.name}; the release folder verifies")
    return 0


def _result_json(result: BuildResult) -> dict[str, Any]:
    return {
        "out": str(result.out),
        "checksums": str(result.checksums),
        "signature": str(result.signature) if result.signature else None,
        "manifest": str(result.manifest),
        "hardening": {
            "reports": [str(p) for p in result.reports],
            "gate": policy_document(result.gate),
        },
        "skipped": [
            {"target": r.target, "format": r.format, "reason": r.reason} for r in result.skipped
        ],
        "artifacts": [
            {
                "name": a.name,
                "path": str(a.path),
                "target": a.target,
                "format": a.format,
                "sha256": a.sha256,
                "size": a.size,
                "reused": a.reused,
                "seconds": round(a.seconds, 3),
                "payload": str(a.payload) if a.payload else None,
            }
            for a in result.artifacts
        ],
    }


def _print_result(result: BuildResult) -> None:
    width = max(len(a.name) for a in result.artifacts)
    for a in result.artifacts:
        how = "reused" if a.reused else "built "
        print(
            f"{how}  {a.name:<{width}}  {a.size / 1e6:7.2f} MB  sha256:{a.sha256[:16]}…",
        )
    for r in result.skipped:
        print(f"skipped {r}")
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


def cmd_inspect(args: argparse.Namespace) -> int:
    info = buildinfo.read(args.artifact)
    if args.json:
        _emit_json(info)
        return 0
    for key in sorted(info):
        value = info[key]
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in sorted(value.items()))
        elif isinstance(value, list):
            value = "\n" + "\n".join(f"    {v}" for v in value) if value else "(none)"
        print(f"{key:>15}: {value}")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    formats = [f.strip() for f in ("json" if args.json else args.format).split(",") if f]
    unknown = [f for f in formats if f != "table" and f not in output.FORMATS]
    if unknown or not formats:
        raise InputError(
            f"--format: unknown format {', '.join(unknown) or '(none)'}",
            hint="formats: table, " + ", ".join(output.FORMATS),
        )
    files = [f for f in formats if f != "table"]
    if args.out is None and len(formats) > 1:
        raise InputError(
            "--format: several formats need --out DIR", hint="or ask for one format at a time"
        )
    policy = load_policy(args.policy) if args.policy else None
    result = audit_paths(args.paths)
    unreadable = tuple(p.path for p in result.problems)
    gate = evaluate(result.files, policy, unreadable=unreadable) if policy is not None else None
    if args.out is not None:
        for path in output.write_reports(
            args.out, args.name, result, gate, formats=tuple(files), root=Path.cwd()
        ):
            print(f"wrote {path}", file=sys.stderr)
    elif files:
        sys.stdout.write(output.render(files[0], result, gate, title=args.name, root=Path.cwd()))
    if "table" in formats:
        _print_audit(result, gate)
    if result.problems or result.unparseable:
        failed = [p.path for p in result.problems] + [f.path for f in result.unparseable]
        raise InputError(
            f"{len(failed)} file(s) could not be read: " + ", ".join(failed[:5]),
            hint="each is listed in the report with the reason",
        )
    if gate is not None and not gate.passed:
        raise CheckFailed(
            gate_line(gate), hint="fix the build flags, or add a waiver with a reason"
        )
    return 0


def _print_audit(result: AuditResult, gate: GateResult | None) -> None:
    names = ALL_CHECKS
    print("  ".join(f"{n[:8]:<8}" for n in names) + "  component     file")
    failing = 0
    for r in result.files:
        states = {c.name: c.state.value for c in r.checks}
        failing += any(v == "fail" for v in states.values())
        if "parse" in states:
            cells = f"{'unparseable: ' + r.checks[0].evidence:<{10 * len(names) - 2}}"
        else:
            cells = "  ".join(f"{states.get(n, '-'):<8}" for n in names)
        origin = f" ({r.origin})" if r.origin and r.component.value == "wheel" else ""
        print(
            f"{cells}  {r.component.value:<12}  {r.path}{origin} "
            f"[{r.format} {r.kind} {r.arch} {r.libc}]"
        )
    for p in result.problems:
        print(f"unreadable: {p.path}: {p.reason}")
    for n in result.not_audited:
        print(f"not audited: {n.path}: {n.reason}")
    print(
        f"\n{len(result.files)} native file(s): {len(result.files) - failing} pass every check, "
        f"{failing} fail at least one; {len(result.not_audited)} not audited"
    )
    if gate is not None:
        print(gate_line(gate))
        for v in gate.waived:
            print(f"  waived: {v.path}: {v.requirement}: {v.waiver}")
        for v in gate.failures:
            if v.waiver:
                print(f"  {v.path}: {v.requirement}: {v.waiver}")
        for w in gate.unused_waivers:
            print(f"  unused waiver: {w}")


def cmd_verify(args: argparse.Namespace) -> int:
    result = verify(
        args.folder,
        allowed_signers=args.allowed_signers,
        identity=args.identity,
        require_signature=args.require_signature,
        artifacts=tuple(args.artifact),
    )
    if args.json:
        _emit_json(result.to_json())
    else:
        for item in result.items:
            print(item.line())
        print(result.summary())
    if not result.ok:
        raise CheckFailed(
            f"verification failed: {result.headline()}",
            hint="do not use this release; fetch it again from the team's release page",
        )
    return 0


def cmd_repro(args: argparse.Namespace) -> int:
    recipe = _recipe(args.recipe)
    result = repro(
        recipe,
        targets=args.target,
        formats=args.format,
        out=args.out,
        cache=Cache(root=args.cache_dir or default_root()),
        runs=args.runs,
        lockfiles=args.lockfiles,
        perturb=args.perturb,
    )
    if args.json:
        _emit_json(result.to_json())
    else:
        for c in result.conditions:
            note = f"  ({c.note})" if c.note else ""
            print(f"varied  {c.name}: {' | '.join(c.values)}{note}")
        for f in result.files:
            if f.same:
                print(f"same    {f.name}  sha256:{str(f.digests[0])[:16]}…")
            else:
                shown = " vs ".join(str(d)[:16] if d else "missing" for d in f.digests)
                report = f"  → {f.report}" if f.report else ""
                print(f"DIFFERS {f.name}  {shown}{report}")
        for s in result.skipped:
            print(f"skipped {s}")
        same = sum(f.same for f in result.files)
        print(f"{same} of {len(result.files)} files identical across {args.runs} builds")
    repro_check(result)
    return 0


def cmd_cibuildwheel_config(args: argparse.Namespace) -> int:
    recipe = _recipe(args.recipe)
    text = cibw.config(recipe)
    if args.json:
        _emit_json(
            {
                "packages": list(recipe.native),
                "builds": [asdict(b) for b in cibw.builds(recipe)],
                "config": text,
            }
        )
    elif args.out is None:
        sys.stdout.write(text)
    else:
        with output_errors(args.out.parent):
            atomic_write_text(args.out, text)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


def cmd_release(args: argparse.Namespace) -> int:
    if args.release_command == "sign":
        sig = sign_release(args.folder, args.key)
        if args.json:
            _emit_json({"signature": str(sig)})
        else:
            print(f"signed: {sig}")
        return 0
    done = assemble(args.out, args.inputs, sign_key=args.sign_key)
    if args.json:
        _emit_json(
            {
                "out": str(done.out),
                "inputs": [str(p) for p in done.inputs],
                "artifacts": list(done.artifacts),
                "files": [str(p) for p in done.files],
            }
        )
    else:
        for name in done.artifacts:
            print(f"artifact  {name}")
        for path in done.files:
            print(f"wrote     {path}")
        print(f"assembled {len(done.artifacts)} artifact(s) from {len(done.inputs)} folder(s)")
    return 0


def cmd_host(args: argparse.Namespace) -> int:
    cache = Cache(root=args.cache_dir or default_root())
    if args.host_command == "create":
        host = host_store.create(hosts.get(args.name), cache, force=args.force, mirror=args.mirror)
        if args.json:
            _emit_json({"name": args.name, "root": str(host.root)})
        else:
            print(f"host {args.name}: {host.root}")
        return 0
    if args.host_command == "remove":
        removed = host_store.remove(hosts.get(args.name), cache)
        if not args.json:
            print(f"removed {removed}" if removed else f"host {args.name}: not created")
        return 0
    specs = [hosts.get(n) for n in args.names] if args.names else list(hosts.all_hosts().values())
    states = [host_store.status(spec, cache) for spec in specs]
    if args.json:
        _emit_json([asdict(s) for s in states])
    else:
        for st in states:
            print(f"{'ok' if st.ok else 'NOT OK':<7} {st.name:<14} {st.detail}  ({st.folder})")
    if not all(st.ok for st in states):
        raise CheckFailed(
            "not every host is ready: " + ", ".join(s.name for s in states if not s.ok),
            hint="make them: buildkit host create NAME",
        )
    return 0


def cmd_run_on(args: argparse.Namespace) -> int:
    env = {}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"--env {item!r}: expected NAME=VALUE")
        env[key] = value
    return run_on(
        args.host, args.artifact, args.args, Cache(root=args.cache_dir or default_root()), env=env
    )


COMMANDS = {
    "lock": cmd_lock,
    "build": cmd_build,
    "audit": cmd_audit,
    "inspect": cmd_inspect,
    "verify": cmd_verify,
    "repro": cmd_repro,
    "cibuildwheel-config": cmd_cibuildwheel_config,
    "release": cmd_release,
    "host": cmd_host,
    "run-on": cmd_run_on,
}


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    # run-on passes everything after "--" to the program, options included.
    head, tail = (
        (words[: words.index("--")], words[words.index("--") + 1 :])
        if "--" in words
        else (words, [])
    )
    args = _parser().parse_args(head)
    if args.command == "run-on":
        args.args = [*args.args, *tail]
    elif tail:
        args = _parser().parse_args(words)
    setup_logging(args.verbose)
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return COMMANDS[args.command](args)
    except BuildkitError as exc:
        print_error(exc.message, exc.hint)
        return exc.exit_code
    except (Stopped, KeyboardInterrupt) as exc:
        signum = exc.signum if isinstance(exc, Stopped) else signal.SIGINT
        print_error(
            f"stopped by {signal.Signals(signum).name}; nothing half-written was kept "
            "(run the same command again to finish)",
            None,
        )
        return 128 + signum
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stop(signum: int, frame: object) -> None:
    """First SIGTERM/SIGINT: unwind (cleaning up on the way); later ones are ignored so
    the clean-up itself is not cut short."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise Stopped(signum)


if __name__ == "__main__":
    sys.exit(main())
