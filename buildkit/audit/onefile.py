"""Read the payload of a Nuitka onefile binary without running or extracting it.

Nuitka links the payload into the bootstrap's read-only data: ``KA`` and a compression
flag (``X`` none, ``Y`` zstandard), then per file ``name\\0``, a flags byte (bit 1:
executable, bit 2: symlink, then ``target\\0`` instead of data), the size (u64), a CRC-32
(u32, only in cached-extraction mode) and the bytes; an empty name ends the list, and the
payload's length (u64) follows. buildkit builds with ``--onefile-no-compression``; a
compressed payload is reported, not guessed at.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass

from ..buildinfo import MEMBER
from .components import Context, _load, from_info, native_of, toolchain_of, wheel_files_of

_MAX_CANDIDATES = 64
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@dataclass(frozen=True, kw_only=True)
class Entry:
    name: str
    offset: int
    size: int


@dataclass(frozen=True, kw_only=True)
class Payload:
    entries: tuple[Entry, ...]


def read_payload(data: bytes | mmap.mmap) -> Payload | str | None:
    """The payload's files; an explanation when it is there but unreadable; None when the
    file is not a onefile binary. Only read-only data sections and anything after the
    last section are searched (Nuitka links the payload into .rodata; older versions
    appended it)."""
    for low, high in _search_ranges(data):
        start = data.find(b"KAX", low, high)
        for _ in range(_MAX_CANDIDATES):
            if start < 0:
                break
            for crc in (True, False):
                entries = _parse(data, start + 3, crc)
                if entries is not None:
                    return Payload(entries=entries)
            start = data.find(b"KAX", start + 1, high)
        if data.find(b"KAY" + _ZSTD_MAGIC, low, high) >= 0:
            return "a compressed onefile payload: its native files are not audited"
    return None


def _search_ranges(data: bytes | mmap.mmap) -> list[tuple[int, int]]:
    """``.rodata`` and the bytes after the last section, from the ELF section headers
    (read with struct); the whole file when they cannot be read."""
    whole = [(0, len(data))]
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return whole  # 64-bit little-endian only: the hosts Nuitka builds for
    (shoff,) = struct.unpack_from("<Q", data, 40)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 58)
    if shentsize != 64 or not 0 < shnum < 4096 or shstrndx >= shnum:
        return whole
    if shoff + shnum * 64 > len(data):
        return whole
    headers = [struct.unpack_from("<IIQQQQ", data, shoff + i * 64) for i in range(shnum)]
    names_at = headers[shstrndx][4]
    ranges, end = [], 0
    for name, kind, _flags, _addr, offset, size in headers:
        if kind != 8:  # SHT_NOBITS takes no room in the file
            end = max(end, offset + size)
        label = data[names_at + name : names_at + name + 8]
        if label.startswith(b".rodata\0") and offset + size <= len(data):
            ranges.append((offset, offset + size))
    end = max(end, shoff + shnum * 64)
    if end < len(data):
        ranges.append((end, len(data)))
    return ranges or whole


def _parse(data: bytes | mmap.mmap, at: int, crc: bool) -> tuple[Entry, ...] | None:
    start = at - 3
    entries = []
    while True:
        end = data.find(b"\0", at, at + 4096)
        if end < 0:
            return None
        raw = data[at:end]
        at = end + 1
        if not raw:
            break
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
        if at >= len(data):
            return None
        flags = data[at]
        at += 1
        if flags & 2:  # symlink: its target follows
            end = data.find(b"\0", at, at + 4096)
            if end < 0:
                return None
            at = end + 1
            continue
        if flags & ~3 or at + 8 > len(data):
            return None
        (size,) = struct.unpack_from("<Q", data, at)
        at += 8 + (4 if crc else 0)
        if at + size > len(data):
            return None
        entries.append(Entry(name=name, offset=at, size=size))
        at += size
    if at + 8 > len(data) or struct.unpack_from("<Q", data, at)[0] != at - start:
        return None
    return tuple(entries)


def context(payload: Payload, data: bytes | mmap.mmap) -> Context:
    """The first payload file is the program Nuitka compiled: ours, like the bootstrap."""
    info = None
    for entry in payload.entries:
        if entry.name == MEMBER and entry.size < 1 << 20:
            info = _load(data[entry.offset : entry.offset + entry.size])
    recipe, python, wheels = from_info(info)
    own = frozenset(e.name for e in payload.entries[:1])
    return Context(
        kind="onefile",
        recipe=recipe,
        python=python,
        own=own,
        wheels=wheels,
        wheel_files=wheel_files_of(info),
        native=native_of(info),
        toolchain=toolchain_of(info),
    )
