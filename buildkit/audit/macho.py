"""Mach-O hardening checks with LIEF, for every slice of a (possibly universal) file.

Decided from the header and load commands (README, "The hardening audit"): PIE = MH_PIE; canary =
``___stack_chk_fail``/``___stack_chk_guard``; NX stack = no MH_ALLOW_STACK_EXECUTION;
NX heap = MH_NO_HEAP_EXECUTION read from the header flags (LIEF 1.0's ``has_nx_heap`` is
inverted); code signature = LC_CODE_SIGNATURE; hardened runtime = CS_RUNTIME in the code
directory's flags; ``__PAGEZERO`` for executables.
"""

from __future__ import annotations

import struct
import warnings

import lief

from .findings import Check, FileReport, State, unparseable

lief.logging.disable()
warnings.filterwarnings("ignore", message=r".* is not a valid ", category=RuntimeWarning)

MH_PIE = 0x200000
MH_ALLOW_STACK_EXECUTION = 0x20000
MH_NO_HEAP_EXECUTION = 0x1000000
CS_RUNTIME = 0x10000
CSMAGIC_EMBEDDED_SIGNATURE = 0xFADE0CC0
CSMAGIC_CODEDIRECTORY = 0xFADE0C02
CSSLOT_CODEDIRECTORY = 0
CSSLOT_ALTERNATE_CODEDIRECTORIES = 0x1000
_CANARY = {"___stack_chk_fail", "___stack_chk_guard"}
ARCH = {"ARM64": "arm64", "X86_64": "x86-64", "X86": "x86", "ARM": "arm"}


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _name(value: object) -> str:
    return str(value).rsplit(".", 1)[-1]


def audit(source: bytes | str, path: str) -> list[FileReport]:
    """One report per slice; a universal binary's slices are shown as ``path[arch]``."""
    if isinstance(source, str):
        with open(source, "rb") as f:
            data = f.read()
    else:
        data = source
    fat = lief.MachO.parse(data) if data else None
    if fat is None or fat.size == 0:
        return [unparseable(path, "LIEF could not parse this file as Mach-O", fmt="mach-o")]
    slices = [b for i in range(fat.size) if (b := fat.at(i)) is not None]
    declared = _declared_slices(data)
    sizes = _slice_sizes(data, len(slices))
    reports = [
        unparseable(
            f"{path}[slice {i + 1}]",
            f"the universal header declares {declared} slices; LIEF read {len(slices)} "
            "(truncated or corrupted)",
            fmt="mach-o",
        )
        for i in range(len(slices), declared)
    ]
    for index, binary in enumerate(slices):
        cpu = _name(binary.header.cpu_type)
        arch = ARCH.get(cpu, cpu.lower())
        shown = f"{path}[{arch}]" if max(declared, len(slices)) > 1 else path
        if cpu not in ARCH or not binary.commands:
            reports.append(
                unparseable(
                    shown,
                    f"Mach-O header without load commands or with unknown CPU type {cpu}",
                    fmt="mach-o",
                )
            )
            continue
        end = max((s.file_offset + s.file_size for s in binary.segments), default=0)
        if end > sizes[index]:
            reports.append(
                unparseable(
                    shown,
                    f"truncated: segments end at byte {end}, the file has {sizes[index]}",
                    fmt="mach-o",
                )
            )
            continue
        reports.append(_slice(binary, shown, arch))
    return sorted(reports, key=lambda r: r.path)


def _declared_slices(data: bytes) -> int:
    if data[:4] in (b"\xca\xfe\xba\xbe", b"\xca\xfe\xba\xbf") and len(data) >= 8:
        return min(int.from_bytes(data[4:8], "big"), 64)
    return 1


def _slice_sizes(data: bytes, count: int) -> list[int]:
    """The size of each slice: from the fat header of a universal file, else the file's."""
    magic = data[:4]
    if magic not in (b"\xca\xfe\xba\xbe", b"\xca\xfe\xba\xbf") or len(data) < 8:
        return [len(data)] * count
    wide = magic == b"\xca\xfe\xba\xbf"
    entry = 32 if wide else 20
    sizes = []
    for i in range(count):
        at = 8 + i * entry
        if wide:
            _cpu, _sub, offset, size = struct.unpack_from(">iiQQ", data, at)
        else:
            _cpu, _sub, offset, size = struct.unpack_from(">iiII", data, at)
        sizes.append(min(size, max(0, len(data) - offset)))
    return sizes


def _slice(binary: lief.MachO.Binary, path: str, arch: str) -> FileReport:
    flags = binary.header.flags
    file_type = _name(binary.header.file_type)
    imports = {_text(s.name) for s in binary.imported_symbols}
    exports = {_text(s.name) for s in binary.exported_symbols}
    if file_type == "EXECUTE":
        kind = "pie-executable" if flags & MH_PIE else "executable"
    elif f"_PyInit_{path.rsplit('!', 1)[-1].rsplit('/', 1)[-1].split('.', 1)[0]}" in exports or (
        len([n for n in exports if n.startswith("_PyInit_")]) == 1
    ):
        kind = "python-extension"
    elif file_type == "BUNDLE":
        kind = "bundle"
    elif file_type == "DYLIB":
        kind = "shared-library"
    else:
        kind = file_type.lower()
    executable = file_type == "EXECUTE"
    checks = (
        _pie(flags, kind, executable),
        _canary(imports | {_text(s.name) for s in binary.symbols}, imports),
        _nx_stack(flags),
        _nx_heap(flags, arch, executable),
        *_signature(binary, executable),
        _pagezero(binary, executable),
    )
    return FileReport(
        path=path, format="mach-o", kind=kind, arch=arch, libc="libSystem", checks=checks
    )


def _pie(flags: int, kind: str, executable: bool) -> Check:
    if not executable:
        return Check(name="pie", state=State.NOT_APPLICABLE, evidence=f"{kind}: not an executable")
    if flags & MH_PIE:
        return Check(name="pie", state=State.PASS, evidence="MH_PIE")
    return Check(name="pie", state=State.FAIL, evidence="no MH_PIE: fixed load address")


def _canary(names: set[str], imports: set[str]) -> Check:
    found = sorted(names & _CANARY)
    if found:
        return Check(name="canary", state=State.PASS, evidence=", ".join(found))
    if not imports:
        return Check(name="canary", state=State.UNKNOWN, evidence="no imported symbols")
    return Check(name="canary", state=State.FAIL, evidence="no ___stack_chk_* symbol")


def _nx_stack(flags: int) -> Check:
    if flags & MH_ALLOW_STACK_EXECUTION:
        return Check(name="nx", state=State.FAIL, evidence="MH_ALLOW_STACK_EXECUTION set")
    return Check(name="nx", state=State.PASS, evidence="no MH_ALLOW_STACK_EXECUTION")


def _nx_heap(flags: int, arch: str, executable: bool) -> Check:
    if not executable:
        return Check(
            name="nx-heap", state=State.NOT_APPLICABLE, evidence="decided by the executable"
        )
    if flags & MH_NO_HEAP_EXECUTION:
        return Check(name="nx-heap", state=State.PASS, evidence="MH_NO_HEAP_EXECUTION set")
    if arch == "arm64":
        return Check(
            name="nx-heap",
            state=State.PASS,
            evidence="MH_NO_HEAP_EXECUTION not set; arm64 never maps the heap executable",
        )
    return Check(name="nx-heap", state=State.FAIL, evidence="MH_NO_HEAP_EXECUTION not set")


def _signature(binary: lief.MachO.Binary, executable: bool) -> tuple[Check, Check]:
    signature = binary.code_signature if binary.has_code_signature else None
    blob = bytes(signature.content) if signature is not None else b""
    if signature is None:
        unsigned = Check(name="codesign", state=State.FAIL, evidence="no LC_CODE_SIGNATURE")
    else:
        unsigned = Check(
            name="codesign", state=State.PASS, evidence=f"LC_CODE_SIGNATURE, {len(blob)} bytes"
        )
    if not executable:
        return unsigned, Check(
            name="hardened-runtime",
            state=State.NOT_APPLICABLE,
            evidence="set by the main executable's signature",
        )
    if signature is None:
        return unsigned, Check(name="hardened-runtime", state=State.FAIL, evidence="not signed")
    signed = unsigned
    flags = code_directory_flags(blob)
    if flags is None:
        return signed, Check(
            name="hardened-runtime", state=State.UNKNOWN, evidence="no readable code directory"
        )
    if flags & CS_RUNTIME:
        return signed, Check(
            name="hardened-runtime", state=State.PASS, evidence=f"CS_RUNTIME in {flags:#x}"
        )
    return signed, Check(
        name="hardened-runtime",
        state=State.FAIL,
        evidence=f"code directory flags {flags:#x}: no CS_RUNTIME (0x10000)",
    )


def code_directory_flags(blob: bytes) -> int | None:
    """The flags of the first code directory in an embedded signature (big-endian)."""
    if len(blob) < 12:
        return None
    magic, _length, count = struct.unpack_from(">III", blob, 0)
    if magic != CSMAGIC_EMBEDDED_SIGNATURE or count > (len(blob) - 12) // 8:
        return None
    for i in range(count):
        slot, offset = struct.unpack_from(">II", blob, 12 + 8 * i)
        if slot not in (CSSLOT_CODEDIRECTORY, CSSLOT_ALTERNATE_CODEDIRECTORIES):
            continue
        if offset + 16 > len(blob):
            return None
        cd_magic, _cd_len, _version, cd_flags = struct.unpack_from(">IIII", blob, offset)
        if cd_magic == CSMAGIC_CODEDIRECTORY:
            return int(cd_flags)
    return None


def _pagezero(binary: lief.MachO.Binary, executable: bool) -> Check:
    if not executable:
        return Check(name="pagezero", state=State.NOT_APPLICABLE, evidence="executables only")
    seg = binary.get_segment("__PAGEZERO")
    if seg is None:
        return Check(name="pagezero", state=State.FAIL, evidence="no __PAGEZERO segment")
    if seg.virtual_size == 0 or seg.init_protection != 0:
        return Check(
            name="pagezero",
            state=State.FAIL,
            evidence=f"__PAGEZERO size {seg.virtual_size:#x}, protection {seg.init_protection}",
        )
    return Check(
        name="pagezero", state=State.PASS, evidence=f"__PAGEZERO {seg.virtual_size:#x} bytes"
    )
