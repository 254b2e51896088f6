"""The seccomp slot of a native binary: read it (the audit) and arm it (the build).

``onefile_seccomp.c`` reserves the section ``.buildkit_seccomp`` in the onefile
bootstrap: a 48-byte header (magic ``buildkit-seccomp``, version 1, armed, the audit
architecture token, the instruction count, the number of calls allowed, a 64-bit mask of
the address families socket() is limited to (bit N: family N; 0: not limited), 4
reserved bytes), then room for :data:`MAX` classic BPF instructions of 8 bytes each, little-endian
(both targets are). Arming writes the header and the program into that room; the file
keeps its size and every other byte.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import lief

from ..errors import CheckFailed, InputError
from ..fsutil import atomic_write_bytes
from . import Profile, family_name, family_number, libseccomp

SECTION = ".buildkit_seccomp"
MAGIC = b"buildkit-seccomp"
HEADER = struct.Struct("<16s5IQ4x")
MAX = 4096
INSN = 8
SIZE = HEADER.size + MAX * INSN


@dataclass(frozen=True, kw_only=True)
class Slot:
    offset: int  # in the file
    armed: bool
    arch: str  # "" when empty
    instructions: int
    calls: int
    families: tuple[str, ...] | None = None  # what socket() is limited to (None: any)


def parse(head: bytes, offset: int, size: int) -> Slot:
    """The slot whose section (``size`` bytes at ``offset``) starts with ``head``."""
    if size < SIZE or len(head) < HEADER.size:
        raise CheckFailed(f"the {SECTION} section is {size} bytes, not {SIZE}")
    magic, version, armed, token, count, calls, mask = HEADER.unpack_from(head)
    if magic != MAGIC or version != 1:
        raise CheckFailed(f"the {SECTION} section does not hold a buildkit seccomp slot")
    arch = next((a for a, t in libseccomp.TOKENS.items() if t == token), "")
    if armed and (not arch or not 0 < count <= MAX):
        raise CheckFailed(f"the {SECTION} section holds a damaged filter")
    families = tuple(family_name(n) or f"family {n}" for n in range(64) if mask >> n & 1)
    return Slot(offset=offset, armed=bool(armed), arch=arch, instructions=count, calls=calls,
                families=families or None)  # fmt: skip


def read(data: bytes, binary: lief.ELF.Binary) -> Slot | None:
    """The slot of an ELF file (``data`` its bytes), or None when it has none."""
    section = binary.get_section(SECTION)
    if section is None:
        return None
    offset = int(section.offset)
    return parse(data[offset : offset + HEADER.size], offset, int(section.size))


def arm(source: Path, dest: Path, profile: Profile) -> Slot:
    """Write ``source`` with its slot armed with ``profile`` to ``dest``."""
    data = bytearray(source.read_bytes())
    binary = lief.ELF.parse(list(data))
    if binary is None:
        raise InputError(f"{source} is not an ELF file")
    slot = read(bytes(data), binary)
    if slot is None:
        raise InputError(
            f"{source} has no seccomp slot ({SECTION})",
            hint='it was built without seccomp = "enforce"; build it again',
        )
    if slot.armed:
        raise InputError(f"{source}'s seccomp slot is armed already")
    numbers = [family_number(f) for f in profile.families or ()]
    limited = profile.limits_socket() and all(n is not None and n < 64 for n in numbers)
    families = [n for n in numbers if n is not None] if limited else None
    program = libseccomp.compile_bpf(
        profile.arch,
        profile.calls,
        default_action=libseccomp.act_errno(),
        socket_families=families,
    )
    count = len(program) // INSN
    if count > MAX:
        raise CheckFailed(f"the filter has {count} instructions; a slot holds {MAX}")
    token = libseccomp.TOKENS[profile.arch]
    mask = sum(1 << n for n in families or ())
    header = HEADER.pack(MAGIC, 1, 1, token, count, len(profile.calls), mask)
    data[slot.offset : slot.offset + HEADER.size] = header
    data[slot.offset + HEADER.size : slot.offset + HEADER.size + len(program)] = program
    atomic_write_bytes(dest, bytes(data), mode=0o755)
    return Slot(offset=slot.offset, armed=True, arch=profile.arch, instructions=count,
                calls=len(profile.calls),
                families=profile.families if families else None)  # fmt: skip


def disarm(source: Path, dest: Path) -> Slot:
    """Write ``source`` with its slot marked not armed to ``dest`` (one word differs: the
    bootstrap then installs no filter): the same binary without its filter, for a
    comparison (the start-up bench, a control run)."""
    data = bytearray(source.read_bytes())
    binary = lief.ELF.parse(list(data))
    slot = read(bytes(data), binary) if binary is not None else None
    if slot is None or not slot.armed:
        raise InputError(f"{source} has no armed seccomp slot ({SECTION})")
    struct.pack_into("<I", data, slot.offset + 20, 0)  # the header's "armed" word
    atomic_write_bytes(dest, bytes(data), mode=0o755)
    return Slot(offset=slot.offset, armed=False, arch=slot.arch,
                instructions=slot.instructions, calls=slot.calls,
                families=slot.families)  # fmt: skip
