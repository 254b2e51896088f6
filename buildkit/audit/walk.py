"""Find the native files to audit, without extracting anything to disk: plain files,
folders (symlinks are not followed), zipapps (.pex/.pyz members), .tar.gz archives (nuitka
standalone folders) and nuitka onefile binaries (the outer bootstrap and every native file
of its payload).

Hostile input is expected: every member is read with a size limit, archives that cannot
be read are reported as problems (never skipped silently), names are shown, not used.
"""

from __future__ import annotations

import mmap
import os
import stat
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO

from .. import onefile
from ..fsutil import ZIP_ERRORS, file_kind
from ..onefile import Payload
from . import zipboot
from .components import Context, tar_context, zip_context
from .onefile import context as onefile_context

ELF = b"\x7fELF"
MACHO = (
    b"\xcf\xfa\xed\xfe",
    b"\xce\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",
    b"\xca\xfe\xba\xbf",
    b"\xfe\xed\xfa\xcf",
    b"\xfe\xed\xfa\xce",
)
ZIP_SUFFIXES = (".pex", ".pyz", ".whl", ".zip")
MAX_FILE = 512 * 1024 * 1024  # larger native files are reported, not read
MAX_RATIO = 200  # a zip member this much larger than its compressed size is a bomb


@dataclass(frozen=True, kw_only=True)
class Native:
    """One native file: its bytes (archive members), or where on disk to read them (plain
    files and onefile payload entries, read by the worker that parses them)."""

    path: str  # shown to people: "file" or "archive!member"
    member: str  # path inside the artifact ("" for a plain file)
    format: str  # elf | mach-o
    artifact: str
    context: Context = field(default_factory=Context)
    data: bytes = b""
    source: str = ""  # a file to read ``size`` bytes from, at ``offset``
    offset: int = 0
    size: int = 0
    scan: bool = False  # an ELF executable on disk: look for a onefile payload

    def read(self) -> bytes:
        if not self.source:
            return self.data
        with open(self.source, "rb") as f:
            f.seek(self.offset)
            return f.read(self.size)


@dataclass(frozen=True, kw_only=True)
class Problem:
    """Something that could not be read: reported as a finding, exit code 2."""

    path: str
    reason: str
    artifact: str


@dataclass(frozen=True, kw_only=True)
class Boot:
    """A buildkit zipapp's boot module (see :mod:`.zipboot`): read, never run."""

    path: str
    artifact: str
    text: bytes


@dataclass(frozen=True, kw_only=True)
class NotAudited:
    path: str
    reason: str


Item = Native | Problem | NotAudited | Boot


def native_format(head: bytes) -> str | None:
    if head.startswith(ELF):
        return "elf"
    if head[:4] in MACHO:
        # 0xcafebabe is also a Java class file: a fat Mach-O has few slices.
        if head[:4] == b"\xca\xfe\xba\xbe" and len(head) >= 8:
            return "mach-o" if int.from_bytes(head[4:8], "big") < 32 else None
        return "mach-o"
    return None


def show(name: str) -> str:
    """A member name as shown to people: control characters escaped."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in name)


MAX_DEPTH = 64  # folder levels walked below a folder given to the audit


def walk(paths: list[Path], names: dict[Path, str] | None = None) -> Iterator[Item]:
    """Every native file under ``paths``; ``names`` shows a file under another name (the
    name it will have in a release folder). A path given here may be a link to a file or
    folder; anything but a regular file or a folder (a device, a FIFO) is a problem,
    never opened."""
    for root in paths:
        shown = show(str(root))
        try:
            mode = os.stat(root).st_mode
        except OSError as e:
            reason = "no such file or folder" if not os.path.lexists(root) else e.strerror
            yield Problem(path=shown, reason=str(reason), artifact=shown)
            continue
        if stat.S_ISDIR(mode):
            yield from _folder(root, root.resolve(), 0, set())
        elif stat.S_ISREG(mode):
            yield from _file(root, show((names or {}).get(root, str(root))), top=True)
        else:
            yield Problem(
                path=shown,
                reason=f"{file_kind(mode)}: only regular files and folders are audited",
                artifact=shown,
            )


def _folder(root: Path, top: Path, depth: int, seen: set[tuple[int, int]]) -> Iterator[Item]:
    """Every regular file under ``root`` in name order; symlinks are listed, not followed
    (the entry types come from the directory listing: no extra stat per file); a folder
    met twice (a bind mount loop) or deeper than MAX_DEPTH is a problem, not walked."""
    shown = show(str(root))
    try:
        st = os.stat(root, follow_symlinks=False)
    except OSError as e:
        yield Problem(path=shown, reason=f"cannot read: {e.strerror}", artifact=shown)
        return
    if (st.st_dev, st.st_ino) in seen:
        yield Problem(path=shown, reason="a folder met twice (a loop), not walked again",
                      artifact=shown)  # fmt: skip
        return
    if depth > MAX_DEPTH:
        yield Problem(path=shown, reason=f"deeper than {MAX_DEPTH} folder levels, not walked",
                      artifact=shown)  # fmt: skip
        return
    seen.add((st.st_dev, st.st_ino))
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as e:
        yield Problem(path=shown, reason=f"cannot list: {e.strerror}", artifact=shown)
        return
    for entry in entries:
        path = Path(entry.path)
        if entry.is_symlink():
            try:
                target = path.resolve()
                where = "inside" if target.is_relative_to(top) else "outside"
                what = f"symlink to {show(str(target))} ({where} the tree), not followed"
            except (OSError, RuntimeError):  # a link loop
                what = "symlink that does not resolve (a loop?), not followed"
            yield NotAudited(path=show(entry.path), reason=what)
        elif entry.is_dir(follow_symlinks=False):
            yield from _folder(path, top, depth + 1, seen)
        elif entry.is_file(follow_symlinks=False):
            yield from _file(path, show(entry.path))


def _file(path: Path, artifact: str, *, top: bool = False) -> Iterator[Item]:
    """One regular file. ``top``: a file the user named, which must be something the
    audit reads (native, zip, tar); a file met in a folder is skipped when it is not."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW * (not top) | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                yield Problem(path=artifact, reason=f"{file_kind(st.st_mode)}, not read",
                              artifact=artifact)  # fmt: skip
                return
            size = st.st_size
            head = f.read(64)
            fmt = native_format(head)
            scan = fmt == "elf" and _has_interpreter(f, head)  # onefile bootstraps are dynamic
    except OSError as e:
        yield Problem(path=artifact, reason=f"cannot read: {e.strerror}", artifact=artifact)
        return
    if fmt is not None:
        if size > MAX_FILE:
            yield Problem(
                path=artifact, reason=f"{size} bytes: over the {MAX_FILE} limit", artifact=artifact
            )
            return
        yield Native(
            path=artifact,
            member="",
            format=fmt,
            artifact=artifact,
            source=str(path),
            size=size,
            scan=scan,
        )
    elif zipfile.is_zipfile(path):
        yield from _zip(path, artifact)
    elif artifact.endswith((".tar.gz", ".tgz", ".tar")):
        yield from _tar(path, artifact, head)
    elif artifact.endswith(ZIP_SUFFIXES):
        yield Problem(
            path=artifact,
            reason="not a readable zip archive (truncated or corrupted?)",
            artifact=artifact,
        )
    elif top:
        yield NotAudited(
            path=artifact,
            reason="not an ELF or Mach-O file, a zip or a tar archive: nothing to audit",
        )


def onefile_members(item: Native) -> tuple[Native, list[Native], str | None]:
    """A plain ELF executable that may be a onefile binary: itself (with what its payload
    says about its members) and the native files of its payload; or itself, none, and why
    its payload cannot be read. Run by the audit's workers (it reads the whole file)."""
    with open(item.source, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        payload = onefile.read_payload(data)
        if not isinstance(payload, Payload):
            return replace(item, scan=False), [], payload
        context = onefile_context(payload, data)
        whole = replace(item, context=context, scan=False)
        members = [
            replace(
                whole,
                path=f"{whole.artifact}!{show(entry.name)}",
                member=entry.name,
                format=fmt,
                # a stored payload is read from the file by the worker that audits it;
                # an inflated one is handed over as bytes
                **(
                    {"offset": entry.offset, "size": entry.size}
                    if payload.inflated is None
                    else {"source": "", "data": payload.blob(entry, data)}
                ),
            )
            for entry in payload.entries
            if (fmt := native_format(payload.blob(entry, data, 8))) is not None
        ]
    return whole, members, None


def _has_interpreter(f: BinaryIO, head: bytes) -> bool:
    """Whether an ELF file has a PT_INTERP program header (read with struct, no parser)."""
    if len(head) < 64 or head[4] not in (1, 2) or head[5] not in (1, 2):
        return False
    wide, order = head[4] == 2, "<" if head[5] == 1 else ">"
    if wide:
        (phoff,) = struct.unpack_from(order + "Q", head, 32)
        phentsize, phnum = struct.unpack_from(order + "HH", head, 54)
    else:
        (phoff,) = struct.unpack_from(order + "I", head, 28)
        phentsize, phnum = struct.unpack_from(order + "HH", head, 42)
    if phentsize < 4 or phentsize > 64 or phnum > 4096:
        return False
    f.seek(phoff)
    table = f.read(phentsize * phnum)
    return any(
        struct.unpack_from(order + "I", table, i * phentsize)[0] == 3  # PT_INTERP
        for i in range(len(table) // phentsize)
    )


def _zip(path: Path, artifact: str) -> Iterator[Item]:
    try:
        zf = zipfile.ZipFile(path)
    except ZIP_ERRORS as e:
        yield Problem(path=artifact, reason=f"unreadable zip archive: {e}", artifact=artifact)
        return
    with zf:
        # (ZipInfo.is_dir() fails on an empty name, which a damaged zip can hold)
        infos = sorted(
            (i for i in zf.infolist() if not i.filename.endswith("/")), key=lambda i: i.filename
        )
        try:
            context = zip_context(zf, infos)
        except ZIP_ERRORS as e:
            yield Problem(path=artifact, reason=f"unreadable zip archive: {e}", artifact=artifact)
            return
        for info in infos:
            shown = f"{artifact}!{show(info.filename)}"
            try:
                if zipboot.is_boot(info.filename) and info.file_size <= zipboot.MAX:
                    with zf.open(info) as member:
                        yield Boot(path=shown, artifact=artifact, text=member.read(zipboot.MAX))
                    continue
                with zf.open(info) as member:
                    fmt = native_format(member.read(8))
                    if fmt is None:
                        continue
                    if info.file_size > MAX_FILE or (
                        info.file_size > 1 << 20
                        and info.file_size > MAX_RATIO * max(info.compress_size, 1)
                    ):
                        yield Problem(
                            path=shown,
                            reason=f"declares {info.file_size} bytes from {info.compress_size} "
                            "compressed: over the size or ratio limit (a zip bomb?), not read",
                            artifact=artifact,
                        )
                        continue
                with zf.open(info) as member:
                    data = member.read(MAX_FILE + 1)
            except ZIP_ERRORS as e:
                yield Problem(path=shown, reason=f"unreadable member: {e}", artifact=artifact)
                continue
            if len(data) > MAX_FILE:
                yield Problem(path=shown, reason="over the size limit", artifact=artifact)
                continue
            yield Native(
                path=shown,
                member=info.filename,
                data=data,
                format=fmt,
                artifact=artifact,
                context=context,
            )


MAX_MEMBERS = 200_000  # archive members an audit looks through


def _tar(path: Path, artifact: str, head: bytes) -> Iterator[Item]:
    """A .tar.gz (gzip signature required: an all-zero file is not an empty archive) or a
    plain .tar (ustar signature required); an archive with no file is a problem."""
    gz = artifact.endswith((".tar.gz", ".tgz"))
    if gz and not head.startswith(b"\x1f\x8b"):
        yield Problem(path=artifact, reason="not a gzip file (no gzip signature)",
                      artifact=artifact)  # fmt: skip
        return
    try:
        tar = tarfile.open(path, mode="r:gz" if gz else "r:")  # noqa: SIM115 - closed below
    except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
        yield Problem(path=artifact, reason=f"unreadable tar archive: {e}", artifact=artifact)
        return
    with tar:
        try:
            members = []
            for count, m in enumerate(tar):
                if count >= MAX_MEMBERS:
                    raise tarfile.TarError(f"more than {MAX_MEMBERS} members")
                if m.isfile():
                    members.append(m)
        except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
            yield Problem(path=artifact, reason=f"unreadable tar archive: {e}", artifact=artifact)
            return
        if not members:
            yield Problem(path=artifact, reason="a tar archive with no file in it",
                          artifact=artifact)  # fmt: skip
            return
        context = tar_context(tar, members)
        for entry in members:
            shown = f"{artifact}!{show(entry.name)}"
            if entry.size > MAX_FILE:
                yield Problem(path=shown, reason="over the size limit, not read", artifact=artifact)
                continue
            try:
                content = tar.extractfile(entry)
                data = content.read(MAX_FILE + 1) if content is not None else b""
            except (tarfile.TarError, OSError, EOFError) as e:
                yield Problem(path=shown, reason=f"unreadable member: {e}", artifact=artifact)
                continue
            fmt = native_format(data[:8])
            if fmt is not None:
                yield Native(
                    path=shown,
                    member=entry.name,
                    data=data,
                    format=fmt,
                    artifact=artifact,
                    context=context,
                )
