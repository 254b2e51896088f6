"""The seccomp slot of a native binary: read it (the audit) and arm it (the build).

``onefile_seccomp.c`` reserves the section ``.buildkit_seccomp`` in the onefile
bootstrap. Version 2 (this buildkit's): a 64-byte header (magic ``buildkit-seccomp``,
version, armed, the audit architecture token, the bootstrap filter's instruction count
and number of calls allowed, a 64-bit mask of the address families socket() is limited to
(bit N: family N; 0: not limited), the program filter's instruction count and number of
calls, its flags (bit 0: it may start programs, bit 1: it may make processes), 8 reserved
bytes), then room for :data:`MAX` classic BPF instructions of 8 bytes each, little-endian
(both targets are), for each filter. Version 1 (one filter, a 48-byte header) is still
read, for releases made before. Arming writes the header and both programs into that
room; the file keeps its size and every other byte.
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
HEADER = struct.Struct("<16s5IQ3I8x")
HEADER_V1 = struct.Struct("<16s5IQ4x")
MAX = 4096
INSN = 8
SIZE = HEADER.size + 2 * MAX * INSN
SIZE_V1 = HEADER_V1.size + MAX * INSN
EXECS = 1  # program flags
FORKS = 2
_ARMED = 20  # the offset of the header's "armed" word


@dataclass(frozen=True, kw_only=True)
class Stage:
    """The program's filter, as the slot describes it."""

    instructions: int
    calls: int
    execs: bool  # it may start programs
    forks: bool  # it may make processes


@dataclass(frozen=True, kw_only=True)
class Slot:
    offset: int  # in the file
    armed: bool
    arch: str  # "" when empty
    instructions: int
    calls: int
    families: tuple[str, ...] | None = None  # what socket() is limited to (None: any)
    version: int = 2
    program: Stage | None = None  # version 2, armed


def parse(head: bytes, offset: int, size: int) -> Slot:
    """The slot whose section (``size`` bytes at ``offset``) starts with ``head`` (at
    least :data:`HEADER` ``.size`` bytes)."""
    if len(head) < HEADER_V1.size or head[:16] != MAGIC:
        raise CheckFailed(f"the {SECTION} section does not hold a buildkit seccomp slot")
    (version,) = struct.unpack_from("<I", head, 16)
    if version == 1:
        _, version, armed, token, count, calls, mask = HEADER_V1.unpack_from(head)
        need, p_count, p_calls, flags = SIZE_V1, 0, 0, 0
    elif version == 2 and len(head) >= HEADER.size:
        fields = HEADER.unpack_from(head)
        _, version, armed, token, count, calls, mask, p_count, p_calls, flags = fields
        need = SIZE
    else:
        raise CheckFailed(f"the {SECTION} section holds a slot of an unknown version")
    if size < need:
        raise CheckFailed(f"the {SECTION} section is {size} bytes, not {need}")
    arch = next((a for a, t in libseccomp.TOKENS.items() if t == token), "")
    if armed and (not arch or not 0 < count <= MAX):
        raise CheckFailed(f"the {SECTION} section holds a damaged filter")
    if armed and version == 2 and not 0 < p_count <= MAX:
        raise CheckFailed(f"the {SECTION} section holds a damaged program filter")
    families = tuple(family_name(n) or f"family {n}" for n in range(64) if mask >> n & 1)
    program = (
        Stage(instructions=p_count, calls=p_calls, execs=bool(flags & EXECS),
              forks=bool(flags & FORKS))
        if armed and version == 2 else None
    )  # fmt: skip
    return Slot(offset=offset, armed=bool(armed), arch=arch, instructions=count, calls=calls,
                families=families or None, version=version, program=program)  # fmt: skip


def read(data: bytes, binary: lief.ELF.Binary) -> Slot | None:
    """The slot of an ELF file (``data`` its bytes), or None when it has none."""
    section = binary.get_section(SECTION)
    if section is None:
        return None
    offset = int(section.offset)
    return parse(data[offset : offset + HEADER.size], offset, int(section.size))


def _families(profile: Profile) -> list[int] | None:
    numbers = [family_number(f) for f in profile.families or ()]
    limited = profile.limits_socket() and all(n is not None and n < 64 for n in numbers)
    return [n for n in numbers if n is not None] if limited else None


def _program(profile: Profile, families: list[int] | None, *, stage: bool) -> bytes:
    program = libseccomp.compile_bpf(
        profile.arch,
        profile.calls,
        default_action=libseccomp.act_errno(),
        socket_families=families,
        threads_only=profile.threads_only,
        clone3_enosys=stage,
    )
    if len(program) // INSN > MAX:
        raise CheckFailed(f"the filter has {len(program) // INSN} instructions; a slot holds {MAX}")
    return program


def program_bpf(program: Profile) -> bytes:
    """The program filter (:func:`buildkit.seccomp.make_program`) as classic BPF: what a
    zipapp's boot module installs (backends/zipapp_seccomp.py)."""
    return _program(program, _families(program), stage=True)


def arm(source: Path, dest: Path, profile: Profile, program: Profile) -> Slot:
    """Write ``source`` with its slot armed to ``dest``: ``profile`` for the bootstrap
    (it must allow :data:`buildkit.seccomp.INSTALL`), ``program`` for the program it
    starts (:func:`buildkit.seccomp.make_program`)."""
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
    if slot.version != 2:
        raise InputError(
            f"{source}'s seccomp slot is version {slot.version}, which holds one filter",
            hint="build it again with this buildkit (two filters: bootstrap and program)",
        )
    if slot.armed:
        raise InputError(f"{source}'s seccomp slot is armed already")
    if profile.arch != program.arch:
        raise InputError("the bootstrap's and the program's filters are for different arches")
    families = _families(profile)
    first = _program(profile, families, stage=False)
    second = _program(program, _families(program), stage=True)
    count, p_count = len(first) // INSN, len(second) // INSN
    flags = (EXECS if program.may_exec() else 0) | (0 if program.threads_only else FORKS)
    header = HEADER.pack(MAGIC, 2, 1, libseccomp.TOKENS[profile.arch], count,
                         len(profile.calls), sum(1 << n for n in families or ()), p_count,
                         len(program.calls), flags)  # fmt: skip
    base = slot.offset
    data[base : base + HEADER.size] = header
    data[base + HEADER.size : base + HEADER.size + len(first)] = first
    at = base + HEADER.size + MAX * INSN
    data[at : at + len(second)] = second
    atomic_write_bytes(dest, bytes(data), mode=0o755)
    return parse(header, slot.offset, SIZE)


def disarm(source: Path, dest: Path) -> Slot:
    """Write ``source`` with its slot marked not armed to ``dest`` (one word differs: the
    bootstrap then installs no filter): the same binary without its filter, for a
    comparison (the start-up bench, a control run)."""
    data = bytearray(source.read_bytes())
    binary = lief.ELF.parse(list(data))
    slot = read(bytes(data), binary) if binary is not None else None
    if slot is None or not slot.armed:
        raise InputError(f"{source} has no armed seccomp slot ({SECTION})")
    struct.pack_into("<I", data, slot.offset + _ARMED, 0)
    atomic_write_bytes(dest, bytes(data), mode=0o755)
    return Slot(offset=slot.offset, armed=False, arch=slot.arch,
                instructions=slot.instructions, calls=slot.calls, families=slot.families,
                version=slot.version)  # fmt: skip
