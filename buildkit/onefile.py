"""Read the payload of a Nuitka onefile binary without running or extracting it.

Nuitka links the payload into the bootstrap's read-only data: ``KA`` and a compression
flag, then per file ``name\\0``, a flags byte (bit 1: executable, bit 2: symlink, then
``target\\0`` instead of data), the size (u64), a CRC-32 (u32, only in cached-extraction
mode) and the bytes; an empty name ends the list, and the payload's length (u64)
follows. With the flag ``X`` the list is stored as it is; with ``Y`` (``compress =
"zstd"``) the list is one zstandard frame, inflated here in memory, bounded in size and
ratio like an archive member (a hostile frame is refused, never fully expanded).
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass

_MAX_CANDIDATES = 64
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
MAX_INFLATED = 1 << 30  # a compressed payload larger than this once inflated is refused
MAX_RATIO = 200  # or this many times larger than its compressed bytes: a bomb
_FEED = 1024  # compressed bytes per step: inflating to at most 32 MiB (128 KiB a block)


@dataclass(frozen=True, kw_only=True)
class Entry:
    name: str
    offset: int  # in the file, or in ``Payload.inflated`` when the payload is compressed
    size: int


@dataclass(frozen=True, kw_only=True)
class Payload:
    entries: tuple[Entry, ...]
    inflated: bytes | None = None  # the inflated list of a compressed payload

    def blob(self, entry: Entry, data: bytes | mmap.mmap, limit: int | None = None) -> bytes:
        """The bytes of ``entry`` (at most ``limit``), from the file's ``data`` or from
        the inflated payload."""
        source = data if self.inflated is None else self.inflated
        end = entry.offset + (entry.size if limit is None else min(entry.size, limit))
        return bytes(source[entry.offset : end])


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
                found = _parse(data, start + 3, crc)
                if found is not None and _trailer(data, start, found[1]):
                    return Payload(entries=found[0])
            start = data.find(b"KAX", start + 1, high)
        start = data.find(b"KAY" + _ZSTD_MAGIC, low, high)
        if start >= 0:
            return _compressed(data, start, high)
    return None


def _trailer(data: bytes | mmap.mmap, start: int, end: int) -> bool:
    """Whether the payload's length follows its list, as Nuitka writes it."""
    return end + 8 <= len(data) and struct.unpack_from("<Q", data, end)[0] == end - start


def _compressed(data: bytes | mmap.mmap, start: int, high: int) -> Payload | str:
    try:
        import zstandard
    except ImportError:  # pragma: no cover - a dependency of buildkit
        return "a compressed onefile payload, and zstandard is not installed to read it"
    inflate = zstandard.ZstdDecompressor().decompressobj()
    out, at, room = bytearray(), start + 3, min(MAX_INFLATED, MAX_RATIO * (high - start))
    try:
        while not inflate.eof and at < high:
            out += inflate.decompress(bytes(data[at : min(at + _FEED, high)]))
            at += _FEED
            if len(out) > room:
                return (
                    f"a compressed onefile payload inflating past {room} bytes "
                    f"({MAX_RATIO}x its size, at most {MAX_INFLATED}): refused as a bomb"
                )
    except zstandard.ZstdError as exc:
        return f"a compressed onefile payload that does not inflate: {exc}"
    if not inflate.eof:
        return "a compressed onefile payload that ends before its zstandard frame does"
    end = min(at, high) - len(inflate.unused_data)
    if not _trailer(data, start, end):
        return "a compressed onefile payload whose length does not follow it"
    inflated = bytes(out)
    for crc in (True, False):
        found = _parse(inflated, 0, crc)
        if found is not None and found[1] == len(inflated):
            return Payload(entries=found[0], inflated=inflated)
    return "a compressed onefile payload whose file list cannot be read"


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


def _parse(data: bytes | mmap.mmap, at: int, crc: bool) -> tuple[tuple[Entry, ...], int] | None:
    """The file list starting at ``at`` and where it ends (after its empty name)."""
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
    return tuple(entries), at
