"""The release folder's one writer: move built artifacts into it, with the documents the
release stage makes, then manifest.json, SHA256SUMS and its signature.

The folder stays consistent whenever the build stops, even by SIGKILL: every line of
SHA256SUMS and every entry of manifest.json names a file that is there with those bytes.

1. Everything new (artifacts, manifest.json, and the reports, SBOM and provenance that
   ``extra`` writes) is written into a staging folder inside the release folder first.
2. If that changes the release, SHA256SUMS and manifest.json are first rewritten without
   the files about to be replaced (and a signature of the old SHA256SUMS is removed:
   it would no longer match).
3. The new files are renamed into place (manifest.json last), then SHA256SUMS is written
   complete.

A build stopped between 2 and 3 leaves a smaller, true listing; the next build lists
the rest. Files the release no longer needs (``retire``: a recipe version's rejected
reports once it passes) are removed last. Leftovers of a stopped build (the staging
folder, ``.buildkit-part-*.part`` files) are removed by the next one. Writers of one
folder take turns (a lock on the folder), so concurrent builds into it lose no entry.
Entries of earlier builds stay listed while their files are still there and still match;
the others are dropped with a warning, as is every listed file that is neither an artifact
of the manifest nor a document it calls for (``documents.called_for``): a planted profile
is never carried into a new, signed SHA256SUMS.
``put`` writes single files (the reports of a rejected build, ``audit --out``) under the
same lock, each complete or absent.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from ..errors import CheckFailed, OutputError
from ..fsutil import (
    atomic_copy,
    atomic_write_text,
    folder_lock,
    is_part,
    output_errors,
    remove_tree,
    sha256_file,
)
from . import checksums, documents, manifest, sign
from .manifest import ArtifactRecord

log = logging.getLogger(__name__)

STAGING_PREFIX = ".buildkit-staging-"

#: ``extra(entries, folder)`` writes more release files into ``folder`` (the staging
#: folder, with ``stage_text``) and returns their paths; SHA256SUMS lists them as well.
#: The release stage (``stage.py``) supplies it: the reports, SBOM and provenance.
Extra = Callable[[dict[str, ArtifactRecord], Path], list[Path]]


def leftovers(out: Path) -> list[Path]:
    """What stopped builds left in ``out``: staging folders and buildkit's own temporary
    files. Nothing else is touched: a user's ``.notes.part`` is theirs."""
    try:
        names = sorted(os.listdir(out))
    except OSError:
        return []
    return [out / n for n in names if n.startswith(STAGING_PREFIX) or is_part(n)]


def stage_text(staging: Path, name: str, text: str) -> Path:
    """Write one release file into publish's staging folder (for ``extra``)."""
    path = staging / name
    atomic_write_text(path, text)
    return path


def put(out: Path, texts: Mapping[str, str]) -> list[Path]:
    """Write ``name → text`` files into ``out`` under the folder's lock, each complete or
    absent; returns their paths. They are not listed in SHA256SUMS."""
    written = []
    with folder_lock(out), output_errors(out):
        for name, text in texts.items():
            atomic_write_text(out / name, text)
            written.append(out / name)
    return written


def publish(
    out: Path,
    built: Sequence[tuple[Path, ArtifactRecord]],
    *,
    extra: Extra | None = None,
    retire: Sequence[str] = (),
    sign_key: Path | None = None,
    unvouched: Mapping[str, str] | None = None,
) -> tuple[Path, Path]:
    """Copy each ``(source, record)`` into ``out``; returns (SHA256SUMS, manifest.json).

    ``retire``: names of files in ``out`` to remove once the release is in place.
    ``sign_key``: sign the new SHA256SUMS, still under the lock. ``unvouched``: kept
    entries signed without having been built here (``--keep-foreign``), each marked so
    in manifest.json with why."""
    log.info("publishing %d artifact(s) into %s", len(built), out, extra={"step": "release"})
    with folder_lock(out):
        for path in leftovers(out):
            if path.is_dir():
                remove_tree(path)
            else:
                path.unlink(missing_ok=True)
        with output_errors(out):
            staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=out))
        try:
            done = _publish(
                out,
                staging,
                built,
                extra=extra,
                resign=sign_key is not None,
                unvouched=unvouched or {},
            )
            for name in retire:
                (out / name).unlink(missing_ok=True)
            if sign_key is not None:
                sign.sign_held(out, sign_key)
            return done
        except OutputError as exc:  # name the release folder, not its staging folder
            raise OutputError(exc.message.replace(str(staging), str(out)), hint=exc.hint) from exc
        finally:
            remove_tree(staging)


def _matches(path: Path, digest: object) -> bool:
    return path.is_file() and not path.is_symlink() and sha256_file(path) == digest


def _publish(
    out: Path,
    staging: Path,
    built: Sequence[tuple[Path, ArtifactRecord]],
    *,
    extra: Extra | None,
    resign: bool,
    unvouched: Mapping[str, str],
) -> tuple[Path, Path]:
    sums_path, manifest_path = out / checksums.FILENAME, out / manifest.FILENAME
    try:
        sums_text: str | None = sums_path.read_text("utf-8")
        listed = checksums.parse(sums_text or "", out)
    except (OSError, UnicodeDecodeError, CheckFailed):
        sums_text, listed = None, {}
    rebuilt = {record.name for _, record in built}
    entries: dict[str, ArtifactRecord] = {}
    for name, entry in manifest.read(out).items():
        if name in rebuilt:
            continue
        if _matches(out / name, entry.sha256):
            entries[name] = entry
            if name in unvouched:
                why = f"kept by --keep-foreign: {unvouched[name]}"
                entries[name] = replace(entry, unvouched=why)
        elif (out / name).exists():
            log.warning("%s changed since it was built; it is no longer listed", out / name)
    earlier = dict(entries)
    for source, record in built:
        if not _matches(out / record.name, record.sha256):
            atomic_copy(source, staging / record.name, mode=0o755)
        entries[record.name] = record
    manifest.write(staging, entries)
    if extra is not None:
        extra(entries, staging)

    staged = {p.name: sha256_file(p) for p in staging.iterdir() if not p.name.startswith(".")}
    for source, record in built:
        if staged.get(record.name, record.sha256) != record.sha256:
            raise CheckFailed(
                f"{source} changed before it was published: its sha256 is no longer "
                f"{record.sha256[:16]}…",
                hint="something else writes to it; run the same command again",
            )
    changed = sorted(n for n, d in staged.items() if not _matches(out / n, d))
    final = _still_listed(out, listed, entries, staged)
    final.update({name: e.sha256 for name, e in entries.items()})
    final.update(staged)
    new_text = checksums.render(final)
    if not changed and new_text == sums_text:
        return sums_path, manifest_path

    sig = out / sign.FILENAME
    if sig.exists():
        sig.unlink()
        if not resign:
            log.warning(
                "SHA256SUMS changed: removed its old signature %s; sign it again with "
                "`buildkit release sign %s --key KEY` or build with --sign-key",
                sig,
                out,
            )
    # 2. a true listing without what is about to be replaced
    going = set(changed)
    checksums.write(
        out,
        {
            n: d
            for n, d in listed.items()
            if n not in going and n in final and n != manifest.FILENAME and _matches(out / n, d)
        },
    )
    if manifest.FILENAME in going:
        manifest.write(out, {n: e for n, e in earlier.items() if n not in going})
    # 3. the new files, manifest.json last, then the complete listing
    with output_errors(out):
        for name in sorted(going, key=lambda n: n == manifest.FILENAME):
            os.replace(staging / name, out / name)
    checksums.write(out, final)
    return sums_path, manifest_path


def _still_listed(
    out: Path, listed: dict[str, str], entries: dict[str, ArtifactRecord], staged: dict[str, str]
) -> dict[str, str]:
    """The lines of the old SHA256SUMS the new one keeps: documents the new manifest calls
    for, still there with those bytes and not written again by this publish."""
    wanted = documents.called_for(entries)
    kept = {}
    for name, digest in sorted(listed.items()):
        if name in entries or name in staged or not _matches(out / name, digest):
            continue
        if name in wanted:
            kept[name] = digest
        else:
            log.warning(
                "%s is listed in SHA256SUMS but is neither an artifact of manifest.json nor "
                "a document it calls for; it is no longer listed (nor signed)",
                out / name,
            )
    return kept


def listing_problems(out: Path) -> list[str]:
    """Lines of SHA256SUMS and entries of manifest.json whose file is missing or differs,
    or either file torn: what this module's promise rules out ([] when it holds)."""
    problems = []
    try:
        listed = checksums.parse((out / checksums.FILENAME).read_text("utf-8"), out)
    except FileNotFoundError:
        listed = {}
    except (OSError, UnicodeDecodeError, CheckFailed) as exc:
        return [f"{checksums.FILENAME}: unreadable: {exc}"]
    problems += [
        f"{checksums.FILENAME}: {n} differs or is missing"
        for n, d in listed.items()
        if not _matches(out / n, d)
    ]
    try:
        text = (out / manifest.FILENAME).read_text("utf-8")
    except FileNotFoundError:
        return problems
    try:
        doc = json.loads(text)
        entries = {str(a["name"]): a for a in doc["artifacts"]}
    except (ValueError, KeyError, TypeError) as exc:
        return [*problems, f"{manifest.FILENAME}: torn or malformed: {exc}"]
    problems += [
        f"{manifest.FILENAME}: {n} differs or is missing"
        for n, e in entries.items()
        if not _matches(out / n, e.get("sha256"))
    ]
    return problems
