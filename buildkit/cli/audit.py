"""buildkit audit: the hardening audit of native files, folders and artifacts."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import add_common


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..audit.output import FORMATS

    add_common(p)
    p.add_argument("paths", type=Path, nargs="+", metavar="PATH")
    p.add_argument(
        "--format",
        default="table",
        metavar="LIST",
        help="comma-separated: table, " + ", ".join(FORMATS) + " (default: table); without "
        "--out, one format is printed on stdout",
    )
    p.add_argument(
        "--policy",
        type=Path,
        metavar="FILE",
        help="a TOML file with a [hardening] table (require, scope, waivers), or a recipe",
    )
    p.add_argument(
        "--out", type=Path, metavar="DIR", help="write NAME.hardening.<format> files here"
    )
    p.add_argument(
        "--baseline",
        type=Path,
        metavar="DIR",
        help="an earlier release folder: compare with its NAME-VERSION.hardening.json per "
        "file and check (new failures, fixed, unchanged); SARIF results get baselineState",
    )
    p.add_argument(
        "--name", default="audit", metavar="NAME", help="report file stem (default: audit)"
    )


def run(args: argparse.Namespace) -> int:
    from ..audit.output import FORMATS
    from ..errors import CheckFailed, InputError

    formats = [f.strip() for f in ("json" if args.json else args.format).split(",") if f]
    unknown = [f for f in formats if f != "table" and f not in FORMATS]
    if unknown or not formats:
        raise InputError(
            f"--format: unknown format {', '.join(unknown) or '(none)'}",
            hint="formats: table, " + ", ".join(FORMATS),
        )
    files = tuple(f for f in formats if f != "table")
    if args.out is None and len(formats) > 1:
        raise InputError(
            "--format: several formats need --out DIR", hint="or ask for one format at a time"
        )
    from ..audit import output
    from ..audit.run import audit_paths

    baseline = None
    if args.baseline is not None:
        from ..audit.baseline import load

        baseline = load(args.baseline)  # before the audit: a bad folder wastes no work
    policy = None
    if args.policy:
        from ..recipe import load_policy

        policy = load_policy(args.policy)
    # The report writers load in this process while the workers load the parsers.
    result = audit_paths(args.paths, meanwhile=lambda: output.prepare(files))
    from ..audit.policy import evaluate
    from ..audit.report import gate_line

    unreadable = tuple(p.path for p in result.problems)
    gate = evaluate(result.files, policy, unreadable=unreadable) if policy is not None else None
    diff = None
    if baseline is not None:
        from ..audit.baseline import compare

        diff = compare(result, baseline)
    if args.out is not None:
        written = output.write_reports(
            args.out, args.name, result, gate, formats=files, root=Path.cwd(), baseline=diff
        )
        for path in written:
            print(f"wrote {path}", file=sys.stderr)
    elif files:
        text = output.render(
            files[0], result, gate, title=args.name, root=Path.cwd(), baseline=diff
        )
        sys.stdout.write(text)
    if "table" in formats:
        sys.stdout.write(output.table(result, gate, diff))
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
