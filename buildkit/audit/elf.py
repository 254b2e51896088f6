"""ELF hardening checks with LIEF, decided as the established checkers decide them
(see REFERENCE.md): RELRO, stack canary, NX, PIE, FORTIFY, RPATH/RUNPATH, stripped, and
CET (x86-64: IBT, SHSTK) / BTI (aarch64: BTI, PAC) from the GNU property note."""

from __future__ import annotations

import re
from importlib.resources import files

import lief

from .findings import Check, FileReport, State, unparseable

lief.logging.disable()

_TAG = lief.ELF.DynamicEntry.TAG
_DF_BIND_NOW = 0x8
_DF_1_NOW = 0x1
_DF_1_PIE = 0x08000000
_CANARY = {"__stack_chk_fail", "__stack_chk_fail_local", "__stack_chk_guard"}
_CHK = re.compile(r"^__(\w+)_chk$")
# glibc functions that have a fortified __<name>_chk variant (a fixed list, as data).
FORTIFIABLE = frozenset(
    line
    for line in files("buildkit").joinpath("data/fortifiable.txt").read_text().split("\n")
    if line and not line.startswith("#")
)
ARCH = {"X86_64": "x86-64", "AARCH64": "aarch64", "I386": "x86", "ARM": "arm"}


def audit(data: bytes, path: str) -> FileReport:
    """Every ELF check of one file, read from its bytes."""
    binary = lief.ELF.parse(data)
    if binary is None:
        return unparseable(path, "LIEF could not parse this file as ELF", fmt="elf")
    if not binary.segments:
        return unparseable(
            path, "no program headers: truncated, or not a loadable ELF file", fmt="elf"
        )
    end = max((s.file_offset + s.physical_size for s in binary.segments), default=0)
    if end > len(data):
        return unparseable(
            path, f"truncated: segments end at byte {end}, the file has {len(data)}", fmt="elf"
        )
    imports = {_text(s.name) for s in binary.dynamic_symbols if s.name}
    names = imports | {_text(s.name) for s in binary.symtab_symbols if s.name}
    libc = _libc(binary)
    kind = _kind(binary, path)
    machine = _enum_name(binary.header.machine_type)
    arch = ARCH.get(machine, machine.lower())
    features = _features(binary)
    checks = (
        _relro(binary),
        _canary(names, imports),
        _nx(binary),
        _pie(binary, kind),
        _fortify(imports, libc),
        _rpath(binary),
        _stripped(binary),
        _cet(arch, features),
        _bti(arch, features),
    )
    return FileReport(path=path, format="elf", kind=kind, arch=arch, libc=libc, checks=checks)


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _enum_name(value: object) -> str:
    """``FILE_TYPE.DYN`` -> ``DYN`` (LIEF enums print with their class name)."""
    return str(value).rsplit(".", 1)[-1]


def _flag(binary: lief.ELF.Binary, tag: lief.ELF.DynamicEntry.TAG, bit: int) -> bool:
    entry = binary.get(tag)
    return entry is not None and bool(entry.value & bit)


def _libc(binary: lief.ELF.Binary) -> str:
    interp = _text(binary.interpreter) if binary.has_interpreter else ""
    needed = [_text(n) for n in binary.libraries]
    if "ld-musl" in interp or any(n.startswith("libc.musl") for n in needed):
        return "musl"
    if "ld-linux" in interp or "libc.so.6" in needed:
        return "glibc"
    return "none" if not needed and not interp else "unknown"


def _kind(binary: lief.ELF.Binary, path: str) -> str:
    file_type = _enum_name(binary.header.file_type)
    if file_type == "EXEC":
        return "executable" if binary.has_interpreter else "static"
    if binary.has_interpreter:
        return "pie-executable"
    if _flag(binary, _TAG.FLAGS_1, _DF_1_PIE):
        return "static-pie"
    inits = [n for s in binary.exported_symbols if (n := _text(s.name)).startswith("PyInit_")]
    module = path.rsplit("!", 1)[-1].rsplit("/", 1)[-1].split(".", 1)[0]
    # An extension module exports its own PyInit_; libpython exports dozens.
    extension = f"PyInit_{module}" in inits or len(inits) == 1
    return "python-extension" if extension else "shared-library"


def _relro(binary: lief.ELF.Binary) -> Check:
    has_relro = any(s.type == lief.ELF.Segment.TYPE.GNU_RELRO for s in binary.segments)
    now = (
        binary.get(_TAG.BIND_NOW) is not None
        or _flag(binary, _TAG.FLAGS, _DF_BIND_NOW)
        or _flag(binary, _TAG.FLAGS_1, _DF_1_NOW)
    )
    if has_relro and now:
        return Check(name="relro", state=State.PASS, evidence="full: PT_GNU_RELRO and bind-now")
    if has_relro:
        return Check(name="relro", state=State.FAIL, evidence="partial: PT_GNU_RELRO, no bind-now")
    return Check(name="relro", state=State.FAIL, evidence="none: no PT_GNU_RELRO segment")


def _canary(names: set[str], imports: set[str]) -> Check:
    found = sorted(names & _CANARY)
    if found:
        return Check(name="canary", state=State.PASS, evidence=", ".join(found))
    if not imports:
        return Check(name="canary", state=State.UNKNOWN, evidence="no dynamic symbols to tell from")
    return Check(name="canary", state=State.FAIL, evidence="no __stack_chk_* symbol")


def _nx(binary: lief.ELF.Binary) -> Check:
    stack = [s for s in binary.segments if s.type == lief.ELF.Segment.TYPE.GNU_STACK]
    if not stack:
        return Check(
            name="nx", state=State.UNKNOWN, evidence="no PT_GNU_STACK (default is per arch)"
        )
    if stack[0].has(lief.ELF.Segment.FLAGS.X):
        return Check(name="nx", state=State.FAIL, evidence="PT_GNU_STACK is executable")
    return Check(name="nx", state=State.PASS, evidence="PT_GNU_STACK without PF_X")


def _pie(binary: lief.ELF.Binary, kind: str) -> Check:
    if kind in ("pie-executable", "static-pie"):
        return Check(name="pie", state=State.PASS, evidence=f"ET_DYN {kind}")
    if kind in ("executable", "static"):
        return Check(name="pie", state=State.FAIL, evidence="ET_EXEC: fixed load address")
    return Check(name="pie", state=State.NOT_APPLICABLE, evidence=f"{kind}: not an executable")


def _fortify(imports: set[str], libc: str) -> Check:
    if libc == "musl":
        return Check(name="fortify", state=State.NOT_APPLICABLE, evidence="musl has no _chk")
    fortified = sorted(
        n for n in imports if (m := _CHK.match(n)) and not m.group(1).startswith("stack")
    )
    fortifiable = sorted(n for n in imports if n in FORTIFIABLE)
    evidence = f"{len(fortified)} fortified, {len(fortifiable)} fortifiable unfortified"
    if fortified:
        return Check(name="fortify", state=State.PASS, evidence=evidence)
    if fortifiable:
        return Check(
            name="fortify", state=State.FAIL, evidence=evidence + ": " + ", ".join(fortifiable[:5])
        )
    return Check(name="fortify", state=State.UNKNOWN, evidence="no fortifiable call found")


def _rpath(binary: lief.ELF.Binary) -> Check:
    values = []
    for entry in binary.dynamic_entries:
        if isinstance(entry, lief.ELF.DynamicEntryRpath | lief.ELF.DynamicEntryRunPath):
            values += [f"{_enum_name(entry.tag)}={_text(p)}" for p in entry.paths]
    if not values:
        return Check(name="rpath", state=State.PASS, evidence="no RPATH/RUNPATH")
    inside = all(v.split("=", 1)[1].startswith("$ORIGIN") for v in values)
    return Check(
        name="rpath",
        state=State.PASS if inside else State.FAIL,
        evidence=", ".join(values) + (" (inside the artifact)" if inside else ""),
    )


def _stripped(binary: lief.ELF.Binary) -> Check:
    count = len(binary.symtab_symbols)
    if count == 0:
        return Check(name="stripped", state=State.PASS, evidence="no .symtab")
    return Check(name="stripped", state=State.FAIL, evidence=f"{count} .symtab symbols")


def _features(binary: lief.ELF.Binary) -> set[str] | None:
    """The FEATURE_1_AND bits of the GNU property note (None: no such note)."""
    found: set[str] | None = None
    for note in binary.notes:
        if isinstance(note, lief.ELF.NoteGnuProperty):
            for prop in note.properties:
                if isinstance(prop, lief.ELF.X86Features):
                    found = (found or set()) | {_enum_name(f) for _, f in prop.features}
                elif isinstance(prop, lief.ELF.AArch64Feature):
                    found = (found or set()) | {_enum_name(f) for f in prop.features}
                else:
                    found = found or set()
    return found


def _property_check(
    name: str, arch: str, own_arch: str, want: tuple[str, ...], features: set[str] | None
) -> Check:
    if arch != own_arch:
        return Check(name=name, state=State.NOT_APPLICABLE, evidence=f"{own_arch} only")
    if features is None:
        return Check(name=name, state=State.FAIL, evidence="no GNU property note")
    missing = [f for f in want if f not in features]
    seen = ", ".join(sorted(features & set(want))) or "none"
    if missing:
        return Check(
            name=name,
            state=State.FAIL,
            evidence=f"GNU property note marks {seen}; missing {', '.join(missing)}",
        )
    return Check(name=name, state=State.PASS, evidence=f"GNU property note: {seen}")


def _cet(arch: str, features: set[str] | None) -> Check:
    return _property_check("cet", arch, "x86-64", ("IBT", "SHSTK"), features)


def _bti(arch: str, features: set[str] | None) -> Check:
    return _property_check("bti", arch, "aarch64", ("BTI", "PAC"), features)
