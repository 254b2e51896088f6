"""`buildkit verify DIR`: check a release folder the way a careful ops engineer would.

Items, each ok or failed with the file named:

* checksum: every file SHA256SUMS lists is present and has that sha256;
* unlisted: every other file in the folder (a stray or injected artifact) is a failure;
* signature: ``SHA256SUMS.sig`` checked with ``ssh-keygen -Y verify`` against an allowed
  signers file and identity when given; otherwise, when present (or required), checked
  to be a well-formed signature over SHA256SUMS (``-Y check-novalidate``);
* manifest: every artifact entry matches its file (sha256, size); every listed file that
  is not a release document is an artifact of the manifest;
* contents: each pex and shiv zipapp holds exactly the wheels its manifest entry records
  (no distribution that no lock pinned);
* sbom / provenance: for each recipe version, the artifacts the SBOM and the provenance
  statement name, with their digests, are exactly the manifest's;
* hardening: each recipe version's ``.hardening.json`` records a passed gate;
* document: every listed document (profile, SBOM, provenance, report) is one the
  manifest calls for (``documents.called_for``).

A signature whose signer was not checked (no ``--allowed-signers``) is a warning, never a
passed check; ``--require-signature`` without an allowed signers file is a usage error.
``artifacts`` (``--artifact NAME``) checks only the named downloads (as ``sha256sum -c
--ignore-missing`` does): their SHA256SUMS lines, the signature, their manifest entries
and contents; the rest of the release need not be there.
"""

from __future__ import annotations

import errno
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CheckFailed, InputError
from ..fsutil import (
    MAX_JSON_VALUES,
    escaped,
    json_values,
    loads_bounded,
    read_regular,
    regular_kind,
    sha256_regular,
)
from . import checksums, contents, manifest, profiles, provenance, sbom, sign
from .documents import by_release, called_for, is_document
from .manifest import ArtifactRecord

#: The release documents verify reads (SHA256SUMS, manifest, SBOM, provenance, reports)
#: are small; anything larger is not one of ours.
MAX_DOCUMENT = 64 << 20
#: What reading a hostile document can raise besides OSError: bad UTF-8, bad JSON, JSON
#: nested deeper than Python's recursion limit, values of the wrong type.
_MALFORMED = (ValueError, RecursionError, TypeError, AttributeError, KeyError)


@dataclass(frozen=True, kw_only=True)
class Item:
    ok: bool
    kind: str  # checksum, unlisted, signature, manifest, contents, sbom, provenance, hardening
    name: str  # the file (or release) it is about
    detail: str
    warning: bool = False  # not a failure, not a pass either (a signer not checked)

    def line(self) -> str:
        mark = "FAIL" if not self.ok else "WARN" if self.warning else "ok  "
        return f"{mark}  {self.kind:<10}  {escaped(self.name)}: {escaped(self.detail)}"


@dataclass(frozen=True, kw_only=True)
class Verification:
    folder: Path
    items: tuple[Item, ...]

    @property
    def ok(self) -> bool:
        return all(i.ok for i in self.items)

    @property
    def failures(self) -> tuple[Item, ...]:
        return tuple(i for i in self.items if not i.ok)

    def headline(self) -> str:
        """The first failure, and how many more there are."""
        first, more = self.failures[0], len(self.failures) - 1
        return f"{first.kind} {escaped(first.name)}: {escaped(first.detail)}" + (
            f" (and {more} more)" if more else ""
        )

    def summary(self) -> str:
        failed = len(self.failures)
        return f"{self.folder}: {len(self.items)} checks, " + (
            f"{failed} failed" if failed else "all passed"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "folder": str(self.folder),
            "ok": self.ok,
            "summary": self.summary(),
            "items": [
                {
                    "ok": i.ok,
                    "warning": i.warning,
                    "kind": i.kind,
                    "name": i.name,
                    "detail": i.detail,
                }
                for i in self.items
            ],
        }


def verify(
    folder: Path,
    *,
    allowed_signers: Path | None = None,
    identity: str | None = None,
    require_signature: bool = False,
    artifacts: tuple[str, ...] = (),
) -> Verification:
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder", hint="give a release folder (dist/)")
    if allowed_signers is None and (require_signature or identity is not None):
        flag = "--require-signature" if require_signature else "--identity"
        raise InputError(
            f"{flag} needs --allowed-signers FILE: a signature checked against no key "
            "proves nothing about who made it",
            hint="give the team's allowed_signers file (installed from a trusted place) "
            "and --identity ID",
        )
    items: list[Item] = []
    sums_path = folder / checksums.FILENAME
    try:
        listed = checksums.parse(read_regular(sums_path, MAX_DOCUMENT).decode("utf-8"), sums_path)
    except FileNotFoundError:
        listed = {}
        items.append(Item(ok=False, kind="checksum", name=checksums.FILENAME, detail="missing"))
    except (CheckFailed, OSError, UnicodeDecodeError) as exc:
        listed = {}
        items.append(Item(ok=False, kind="checksum", name=checksums.FILENAME, detail=str(exc)))
    if artifacts:
        for name in artifacts:
            if name not in listed and listed:
                items.append(Item(ok=False, kind="checksum", name=name, detail="not in SHA256SUMS"))
        listed = {n: d for n, d in listed.items() if n in artifacts}
    items += _checksums(folder, listed)
    if not artifacts:
        items += _unlisted(folder, listed, allowed_signers)
    items += _signature(folder, allowed_signers, identity, require_signature)
    entries = _manifest_entries(folder, items)
    if entries is not None and artifacts:
        for name in artifacts:
            if name not in entries:
                items.append(Item(ok=False, kind="manifest", name=name, detail="no entry"))
        items += _manifest(folder, listed, {n: e for n, e in entries.items() if n in artifacts})
    elif entries is not None:
        items += _manifest(folder, listed, entries)
        items += _documents(listed, entries)
        items += _profiles(folder, entries)
        for (recipe, version), group in by_release(entries).items():
            stem = f"{recipe}-{version}"
            want = {e.name: e.sha256 for e in group}
            made = {**want, **profiles.digests(group)}  # the provenance's subjects
            for kind, check, path, wanted in (
                ("sbom", _sbom, folder / sbom.filename(stem), want),
                ("provenance", _provenance, folder / provenance.filename(stem), made),
                ("hardening", _hardening, folder / f"{stem}.hardening.json", want),
            ):
                try:
                    items.append(check(path, wanted))
                except _MALFORMED as exc:
                    detail = f"malformed: {type(exc).__name__}: {exc}"[:300]
                    items.append(Item(ok=False, kind=kind, name=path.name, detail=detail))
    return Verification(folder=folder, items=tuple(items))


def _documents(listed: dict[str, str], entries: dict[str, ArtifactRecord]) -> list[Item]:
    """Every listed document is one the manifest calls for: a planted profile for a
    target with no artifact, a second SBOM or the report of a recipe version the manifest
    does not name fails, however well its checksum and signature match."""
    wanted = called_for(entries)
    return [
        Item(
            ok=False,
            kind="document",
            name=name,
            detail="a release document manifest.json does not call for (no artifact of "
            "this folder is described by it); remove it and its SHA256SUMS line",
        )
        for name in sorted(listed)
        if is_document(name) and name not in wanted
    ]


def _profiles(folder: Path, entries: dict[str, ArtifactRecord]) -> list[Item]:
    """Each seccomp profile the manifest calls for is there and says what it derives."""
    items = []
    for name, text in sorted(profiles.render(entries).items()):
        try:
            found = read_regular(folder / name, MAX_DOCUMENT).decode("utf-8")
        except FileNotFoundError:
            items.append(Item(ok=False, kind="seccomp", name=name, detail="missing"))
            continue
        except (OSError, UnicodeDecodeError) as exc:
            items.append(Item(ok=False, kind="seccomp", name=name, detail=str(exc)[:300]))
            continue
        ok = found == text
        detail = (
            "matches the calls the manifest records"
            if ok
            else ("differs from the calls the manifest records (edited after the build?)")
        )
        items.append(Item(ok=ok, kind="seccomp", name=name, detail=detail))
    return items


def _checksums(folder: Path, listed: dict[str, str]) -> list[Item]:
    items = []
    for name, digest in sorted(listed.items()):
        path = folder / name
        try:
            actual = sha256_regular(path)
        except FileNotFoundError:
            items.append(Item(ok=False, kind="checksum", name=name, detail="listed but missing"))
            continue
        except OSError as exc:
            items.append(Item(ok=False, kind="checksum", name=name, detail=_not_regular(exc)))
            continue
        if actual == digest:
            items.append(Item(ok=True, kind="checksum", name=name, detail="sha256 matches"))
        else:
            items.append(
                Item(
                    ok=False,
                    kind="checksum",
                    name=name,
                    detail=f"sha256 {actual[:16]}… differs from SHA256SUMS {digest[:16]}…",
                )
            )
    return items


def _not_regular(exc: OSError) -> str:
    """The detail for a release file that could not be read as a regular file."""
    if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a symbolic link
        return "a symbolic link; a release holds regular files only"
    return f"{exc.strerror or exc}; a release holds regular files only"


def _unlisted(folder: Path, listed: dict[str, str], allowed_signers: Path | None) -> list[Item]:
    """Files SHA256SUMS does not list; the allowed signers file given on the command line
    may sit in the folder (ops staff keep it next to the download)."""
    items = []
    mine = allowed_signers.resolve() if allowed_signers is not None else None
    for path in sorted(folder.iterdir()):
        if path.name in listed or path.name in (checksums.FILENAME, sign.FILENAME):
            continue
        if mine is not None and path.resolve() == mine:
            continue
        what = "folder" if path.is_dir() else "file"
        items.append(
            Item(
                ok=False,
                kind="unlisted",
                name=path.name,
                detail=f"{what} present but not in SHA256SUMS",
            )
        )
    return items


def _signature(
    folder: Path, allowed_signers: Path | None, identity: str | None, required: bool
) -> list[Item]:
    try:
        odd = regular_kind(folder / sign.FILENAME)
        present = True
    except FileNotFoundError:
        odd, present = None, False
    if odd is not None:
        return [Item(ok=False, kind="signature", name=sign.FILENAME, detail=f"is {odd}")]
    if not (present or required or allowed_signers):
        return []
    if not (folder / checksums.FILENAME).is_file():
        return [Item(ok=False, kind="signature", name=sign.FILENAME, detail="no SHA256SUMS")]
    result = sign.check(folder, allowed_signers, identity)
    if result.ok and allowed_signers is None:
        detail = (
            "signature not checked: well formed over SHA256SUMS, but made by any key "
            "(give --allowed-signers FILE --identity ID)"
        )
        return [Item(ok=True, warning=True, kind="signature", name=sign.FILENAME, detail=detail)]
    return [Item(ok=result.ok, kind="signature", name=sign.FILENAME, detail=result.detail)]


def _manifest_entries(folder: Path, items: list[Item]) -> dict[str, ArtifactRecord] | None:
    """The manifest's records; a failure item for each entry that is not one."""
    path = folder / manifest.FILENAME
    try:
        doc = loads_bounded(read_regular(path, MAX_DOCUMENT))
        records, bad = manifest.parse(doc, manifest.FILENAME)
    except FileNotFoundError:
        items.append(Item(ok=False, kind="manifest", name=manifest.FILENAME, detail="missing"))
        return None
    except (OSError, *_MALFORMED) as exc:
        detail = f"unreadable: {type(exc).__name__}: {exc}"[:300]
        items.append(Item(ok=False, kind="manifest", name=manifest.FILENAME, detail=detail))
        return None
    items += [Item(ok=False, kind="manifest", name=label, detail=why[:300]) for label, why in bad]
    entries = {}
    for name, record in records.items():
        if checksums.is_plain_name(name):
            entries[name] = record
        else:
            items.append(
                Item(ok=False, kind="manifest", name=name, detail="not a file of this folder")
            )
    return entries


def _manifest(
    folder: Path, listed: dict[str, str], entries: dict[str, ArtifactRecord]
) -> list[Item]:
    items = []
    for name, entry in sorted(entries.items()):
        path = folder / name
        try:
            actual = sha256_regular(path)
        except FileNotFoundError:
            actual, detail, ok = None, "in manifest.json but missing", False
        except OSError as exc:
            actual, detail, ok = None, _not_regular(exc), False
        if actual is None:
            pass
        elif actual != entry.sha256:
            detail, ok = "sha256 differs from manifest.json", False
        elif path.stat().st_size != entry.size:
            detail, ok = "size differs from manifest.json", False
        else:
            detail, ok = f"{entry.format} for {entry.target} matches", True
        items.append(Item(ok=ok, kind="manifest", name=name, detail=detail))
        if ok and entry.format in contents.FORMATS:
            ok, detail = contents.compare(path, entry.format, entry.inputs.get("wheels"))
            items.append(Item(ok=ok, kind="contents", name=name, detail=detail))
    for name in sorted(listed):
        if name not in entries and not is_document(name):
            items.append(
                Item(
                    ok=False,
                    kind="manifest",
                    name=name,
                    detail="listed in SHA256SUMS but not an artifact of manifest.json",
                )
            )
    return items


def _compare(kind: str, path: Path, named: dict[str, str], want: dict[str, str]) -> Item:
    missing = sorted(set(want) - set(named))
    extra = sorted(set(named) - set(want))
    wrong = sorted(n for n in set(want) & set(named) if named[n] != want[n])
    problems = (
        [f"does not name {', '.join(missing)}"] * bool(missing)
        + [f"names {', '.join(extra)}, not in manifest.json"] * bool(extra)
        + [f"wrong sha256 for {', '.join(wrong)}"] * bool(wrong)
    )
    if problems:
        return Item(ok=False, kind=kind, name=path.name, detail="; ".join(problems))
    return Item(ok=True, kind=kind, name=path.name, detail=f"{len(want)} artifact(s) match")


def _load(kind: str, path: Path) -> Any:
    try:
        raw = read_regular(path, MAX_DOCUMENT)
        if json_values(raw) > MAX_JSON_VALUES:
            raise ValueError(f"more than {MAX_JSON_VALUES} JSON values")
        text = raw.decode("utf-8")
        if path.name.endswith(provenance.SUFFIX):
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        return json.loads(text)
    except FileNotFoundError:
        return Item(ok=False, kind=kind, name=path.name, detail="missing")
    except (OSError, ValueError, RecursionError) as exc:
        detail = f"unreadable: {type(exc).__name__}: {exc}"[:300]
        return Item(ok=False, kind=kind, name=path.name, detail=detail)


def _sbom(path: Path, want: dict[str, str]) -> Item:
    doc = _load("sbom", path)
    if isinstance(doc, Item):
        return doc
    if not isinstance(doc, dict) or doc.get("bomFormat") != "CycloneDX":
        return Item(ok=False, kind="sbom", name=path.name, detail="not a CycloneDX document")
    named = {}
    for c in doc.get("components", []):
        ref = str(c.get("bom-ref", ""))
        if ref.startswith("artifact:"):
            sha = [h.get("content") for h in c.get("hashes", []) if h.get("alg") == "SHA-256"]
            named[ref.removeprefix("artifact:")] = str(sha[0]) if sha else ""
    return _compare("sbom", path, named, want)


def _provenance(path: Path, want: dict[str, str]) -> Item:
    lines = _load("provenance", path)
    if isinstance(lines, Item):
        return lines
    named: dict[str, str] = {}
    for st in lines:
        if not isinstance(st, dict) or (st.get("_type"), st.get("predicateType")) != (
            provenance.STATEMENT_TYPE,
            provenance.PREDICATE_TYPE,
        ):
            return Item(
                ok=False,
                kind="provenance",
                name=path.name,
                detail="not an in-toto v1 statement with an SLSA v1 predicate",
            )
        for subject in st.get("subject", []):
            named[str(subject.get("name"))] = str(subject.get("digest", {}).get("sha256"))
    return _compare("provenance", path, named, want)


def _hardening(path: Path, want: dict[str, str]) -> Item:
    doc = _load("hardening", path)
    if isinstance(doc, Item):
        return doc
    policy = doc.get("policy") if isinstance(doc, dict) else None
    if not isinstance(policy, dict):
        return Item(ok=False, kind="hardening", name=path.name, detail="records no gate")
    audited = {str(a.get("path")) for a in doc.get("artifacts", [])}
    stray = sorted(audited - set(want))
    if stray:
        return Item(
            ok=False,
            kind="hardening",
            name=path.name,
            detail=f"audits {', '.join(stray)}, not in manifest.json",
        )
    verdict = "passed" if policy.get("passed") else "FAILED"
    return Item(
        ok=bool(policy.get("passed")),
        kind="hardening",
        name=path.name,
        detail=f"gate {verdict} ({policy.get('summary', '')}), "
        f"{len(audited)} artifact(s) with native files",
    )
