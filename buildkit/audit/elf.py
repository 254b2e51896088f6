"""ELF hardening checks with LIEF, decided as the established checkers decide them (the
rules: README, "The hardening audit"): RELRO, stack canary, NX, PIE, FORTIFY,
RPATH/RUNPATH, stripped, CET (x86-64: IBT, SHSTK) / BTI (aarch64: BTI, PAC) from the
GNU property note, and the newest glibc (and libstdc++) symbol versions a file needs
against the oldest glibc the targets promise (portability: a binary that needs
GLIBC_2.34 does not start on RHEL 8)."""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Iterable
from importlib.resources import files
from typing import TYPE_CHECKING, TypeVar, cast

import lief

from .findings import (
    ELF_CHECKS,
    GLIBC_BASELINE,
    NO_FILTER,
    Check,
    FileReport,
    State,
    unparseable,
)

if TYPE_CHECKING:
    from ..seccomp.slot import Stage

T = TypeVar("T")

lief.logging.disable()
# Hostile files carry values LIEF's enums do not know; the checks treat them as unknown.
warnings.filterwarnings("ignore", message=r".* is not a valid ", category=RuntimeWarning)

_TAG = lief.ELF.DynamicEntry.TAG
_DF_BIND_NOW = 0x8
_DF_1_NOW = 0x1
_DF_1_PIE = 0x08000000
_CANARY = {"__stack_chk_fail", "__stack_chk_fail_local", "__stack_chk_guard"}
# Architectures whose stack protector compares against a global __stack_chk_guard
# (x86 and x86-64 read it from thread-local storage instead).
_GLOBAL_GUARD = frozenset({"aarch64", "arm"})
_ZIG_GUARD = "compiler_rt.ssp.__stack_chk_guard"
_CHK = re.compile(r"^__(\w+)_chk$")
# glibc functions that have a fortified __<name>_chk variant (a fixed list, as data).
FORTIFIABLE = frozenset(
    line
    for line in files("buildkit").joinpath("data/fortifiable.txt").read_text().split("\n")
    if line and not line.startswith("#")
)
_CONFIG = lief.ELF.ParserConfig()
_CONFIG.parse_relocations = False  # nothing here reads them; they are most of the time
_CONFIG.parse_overlay = False
_WITH_SYMTAB = lief.ELF.ParserConfig()
_WITH_SYMTAB.parse_relocations = False
_CONFIG.parse_symtab_symbols = False  # counted from the section header; see _symtab_count
_VERSIONED = re.compile(r"^(GLIBC|GLIBCXX|CXXABI)_(\d+(?:\.\d+)*)$")
ARCH = {"X86_64": "x86-64", "AARCH64": "aarch64", "I386": "x86", "ARM": "arm"}


def audit(data: bytes | str, path: str) -> FileReport:
    """Every ELF check of one file, read from its bytes or (faster) from a file name."""
    binary = lief.ELF.parse(data, _CONFIG)
    size = os.path.getsize(data) if isinstance(data, str) else len(data)
    if binary is None:
        return unparseable(path, "LIEF could not parse this file as ELF", fmt="elf")
    file_type = _enum_name(binary.header.file_type)
    if file_type not in ("EXEC", "DYN", "REL"):
        return unparseable(
            path, f"ELF type {file_type} is not a program, library or object", fmt="elf"
        )
    if file_type == "REL":
        machine = _enum_name(binary.header.machine_type)
        return FileReport(
            path=path,
            format="elf",
            kind="relocatable",
            arch=ARCH.get(machine, machine.lower()),
            libc="none",
            checks=tuple(
                Check(
                    name=name,
                    state=State.NOT_APPLICABLE,
                    evidence="relocatable object (.o): judged in the file it is linked into",
                )
                for name in ELF_CHECKS
            ),
        )
    if not binary.segments:
        return unparseable(
            path, "no program headers: truncated, or not a loadable ELF file", fmt="elf"
        )
    end = max((s.file_offset + s.physical_size for s in binary.segments), default=0)
    if end > size:
        return unparseable(
            path, f"truncated: segments end at byte {end}, the file has {size}", fmt="elf"
        )
    # Lookups by name run in LIEF; only the (few) imports are turned into Python strings.
    imports = {n for n in _strings(lambda: binary.imported_symbols, "name") if n}
    canaries = {n for n in _CANARY if binary.has_dynamic_symbol(n)}
    symtab = _symtab_count(binary)
    full: lief.ELF.Binary | None = None
    if not canaries and symtab:
        # Static (or static-PIE), or a library with its own local __stack_chk_fail (zig's
        # compiler-rt links one in beside a fortified call glibc 2.17 lacks): only its
        # symbol table can tell (parsed only when needed), as checksec reads it.
        full = lief.ELF.parse(data, _WITH_SYMTAB)
        if full is not None:
            canaries = {n for n in _CANARY if full.has_symtab_symbol(n)}
    libc = _libc(binary)
    kind = _kind(binary, path)
    machine = _enum_name(binary.header.machine_type)
    arch = ARCH.get(machine, machine.lower())
    own_guard = ""
    if (
        canaries
        and arch in _GLOBAL_GUARD
        and "__stack_chk_guard" not in imports
        and not _copied_from_libc(binary, "__stack_chk_guard")
    ):
        # The canary is read from the global __stack_chk_guard, which libc fills from
        # AT_RANDOM at start. A file linked against libc that defines its own copy
        # reads a value nobody randomises (zig's compiler-rt: a constant).
        if symtab and full is None:
            full = lief.ELF.parse(data, _WITH_SYMTAB)
        if full is not None and full.has_symtab_symbol(_ZIG_GUARD):
            own_guard = f"{_ZIG_GUARD}: zig's compiler-rt guard, a constant"
        elif binary.libraries and not _copy_relocated(data, "__stack_chk_guard"):
            own_guard = "__stack_chk_guard is the file's own, not libc's: nothing randomises it"
    features = _features(binary)
    note = _toolchain_note(binary)
    checks = (
        _relro(binary),
        _canary(canaries, has_dynamic=len(binary.dynamic_symbols) > 0 or symtab > 0, own=own_guard),
        _nx(binary),
        _pie(binary, kind),
        _fortify(imports, libc, note, library=kind in _LIBRARIES),
        _rpath(binary),
        _stripped(symtab),
        _cet(arch, features),
        _bti(arch, features),
        _glibc(binary, libc),
        _seccomp(binary, data, kind),
        _wx(binary),
        _stack_clash(note),
    )
    return FileReport(
        path=path,
        format="elf",
        kind=kind,
        arch=arch,
        libc=libc,
        checks=checks,
        compiler=_compiler(binary),
    )


def _copied_from_libc(binary: lief.ELF.Binary, name: str) -> bool:
    """A position-dependent program defines the variables it reads from a library (a copy
    relocation: the loader copies the library's value in at start), so libc's
    __stack_chk_guard shows there as the program's own symbol, but with the version it
    requires of libc (``GLIBC_2.17``) where a copy of its own would have none."""
    symbol = binary.get_dynamic_symbol(name)
    if symbol is None or not symbol.has_version:
        return False
    version = symbol.symbol_version
    aux = version.symbol_version_auxiliary if version is not None else None
    return isinstance(aux, lief.ELF.SymbolVersionAuxRequirement)


def _copy_relocated(data: str | bytes, name: str) -> bool:
    """The same without symbol versions (musl): the relocations, parsed only here."""
    binary = lief.ELF.parse(data)
    return binary is not None and any(
        r.symbol is not None and r.symbol.name == name and "COPY" in _enum_name(r.type)
        for r in binary.dynamic_relocations
    )


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _read(get: Callable[[], T], fallback: T) -> T:
    """A LIEF string property; LIEF raises on bytes that are not UTF-8 (a hostile or
    damaged file), and those are judged by what they decode to with replacements."""
    try:
        return get()
    except UnicodeDecodeError as exc:
        if isinstance(fallback, str) and isinstance(exc.object, bytes):
            return cast(T, exc.object.decode("utf-8", "replace"))
        return fallback


def _strings(items: Callable[[], Iterable[object]], attr: str | None = None) -> list[str]:
    """Strings of a LIEF list (or an attribute of each item), each read on its own."""
    listed: list[object] = []
    listed = _read(lambda: list(items()), listed)
    out: list[str] = []
    for item in listed:
        if attr is None:
            out.append(_text(cast(str, item)))
            continue

        def get(item: object = item) -> str:
            return cast(str, getattr(item, attr))

        out.append(_text(_read(get, "")))
    return out


def _enum_name(value: object) -> str:
    """``FILE_TYPE.DYN`` -> ``DYN`` (LIEF enums print with their class name)."""
    return str(value).rsplit(".", 1)[-1]


def _flag(binary: lief.ELF.Binary, tag: lief.ELF.DynamicEntry.TAG, bit: int) -> bool:
    entry = binary.get(tag)
    return entry is not None and bool(entry.value & bit)


def _libc(binary: lief.ELF.Binary) -> str:
    interp = _text(_read(lambda: binary.interpreter, "")) if binary.has_interpreter else ""
    needed = _strings(lambda: binary.libraries)
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
    module = path.rsplit("!", 1)[-1].rsplit("/", 1)[-1].split(".", 1)[0]
    # An extension module exports PyInit_<its file name> (libpython exports dozens).
    extension = binary.has_dynamic_symbol(f"PyInit_{module}")
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


def _canary(found: set[str], *, has_dynamic: bool, own: str = "") -> Check:
    if own:
        return Check(name="canary", state=State.FAIL, evidence=own)
    if found:
        return Check(name="canary", state=State.PASS, evidence=", ".join(sorted(found)))
    if not has_dynamic:
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


_LIBRARIES = ("python-extension", "shared-library")


def _seccomp(binary: lief.ELF.Binary, data: bytes | str, kind: str) -> Check:
    """A filter the program installs itself (buildkit's slot, onefile_seccomp.c)."""
    from ..errors import CheckFailed
    from ..seccomp import slot

    section = binary.get_section(slot.SECTION)
    if section is None:
        if kind in _LIBRARIES:
            return Check(
                name="seccomp",
                state=State.NOT_APPLICABLE,
                evidence="a library runs under the filter of the program that loads it",
            )
        return Check(name="seccomp", state=State.FAIL, evidence=NO_FILTER)
    offset = int(section.offset)
    if isinstance(data, str):
        with open(data, "rb") as f:
            f.seek(offset)
            head = f.read(slot.HEADER.size)
    else:
        head = data[offset : offset + slot.HEADER.size]
    try:
        found = slot.parse(head, offset, int(section.size))
    except CheckFailed as exc:
        return Check(name="seccomp", state=State.FAIL, evidence=exc.message)
    if not found.armed:
        return Check(
            name="seccomp",
            state=State.FAIL,
            evidence="empty seccomp slot: the build never wrote the filter into it",
        )
    return Check(
        name="seccomp",
        # one stage (a slot made before the program's own filter): what the bootstrap
        # needed (fork, exec) the program may do too
        state=State.PASS if found.program is not None else State.FAIL,
        evidence=f"enforced: {found.calls} calls allowed on {found.arch} "
        f"({found.instructions} BPF instructions), others fail with EPERM"
        + (f"; socket() only for {', '.join(found.families)}" if found.families else "")
        + _program_stage(found.program),
    )


def _program_stage(stage: Stage | None) -> str:
    """What the program's own filter (a version 2 slot's second stage) allows."""
    if stage is None:
        return (
            "; one stage only: the program runs under the bootstrap's filter, so it may "
            "fork and start programs as the bootstrap did (build it again with this buildkit)"
        )
    return (
        f"; the program's own filter: {stage.calls} calls ({stage.instructions} BPF "
        f"instructions), {'may start programs' if stage.execs else 'starts no program'}, "
        f"{'may fork' if stage.forks else 'threads only'}"
    )


def _toolchain_note(binary: lief.ELF.Binary) -> str:
    """The hardening flags the ``buildkit`` ELF notes say the file was compiled with
    (the hermetic toolchain's, and the one on code Nuitka compiled with the policy's
    flags; see toolchain/build.py), one line per note, or ""."""
    texts = []
    for note in binary.notes:
        if _read(lambda: note.name, "").rstrip("\0") == "buildkit":  # noqa: B023
            text = bytes(note.description)[:4096].split(b"\0", 1)[0]
            texts.append(text.decode("ascii", "replace"))
        if len(texts) >= 8:
            break
    return "\n".join(texts)


def _fortify_level(note: str) -> str:
    """The lowest _FORTIFY_SOURCE level the buildkit notes record ("" when one of them
    records none)."""
    levels = []
    for line in note.splitlines():
        if "-D_FORTIFY_SOURCE=" not in line:
            return ""
        levels.append(line.rsplit("-D_FORTIFY_SOURCE=", 1)[1].split(" ", 1)[0])
    return min(levels, default="")


def _fortify(imports: set[str], libc: str, note: str = "", *, library: bool = False) -> Check:
    if libc == "musl":
        return Check(name="fortify", state=State.NOT_APPLICABLE, evidence="musl has no _chk")
    fortified = sorted(
        n for n in imports if (m := _CHK.match(n)) and not m.group(1).startswith("stack")
    )
    fortifiable = sorted(n for n in imports if n in FORTIFIABLE)
    evidence = f"{len(fortified)} fortified, {len(fortifiable)} fortifiable unfortified"
    level = _fortify_level(note)
    if fortified:
        said = f"level {level} (its buildkit notes)" if level else "level not recorded"
        return Check(name="fortify", state=State.PASS, evidence=f"{evidence}; {said}")
    if level and library:
        # A library the toolchain compiled with _FORTIFY_SOURCE in which no call had a
        # size known at compile time: nothing to check at run time, and its note says so.
        return Check(
            name="fortify",
            state=State.PASS,
            evidence=f"{evidence}: compiled with -D_FORTIFY_SOURCE={level} (its buildkit "
            "toolchain note); no call had a size known at compile time",
        )
    if fortifiable:
        return Check(
            name="fortify", state=State.FAIL, evidence=evidence + ": " + ", ".join(fortifiable[:5])
        )
    return Check(name="fortify", state=State.UNKNOWN, evidence="no fortifiable call found")


def _wx(binary: lief.ELF.Binary) -> Check:
    """No loadable segment both writable and executable (BinSkim's BA3030-style check):
    code an attacker can write to is code they can run."""
    flags = lief.ELF.Segment.FLAGS
    both = [
        f"LOAD at {s.virtual_address:#x}"
        for s in binary.segments
        if s.type == lief.ELF.Segment.TYPE.LOAD and s.has(flags.W) and s.has(flags.X)
    ]
    if both:
        return Check(
            name="wx", state=State.FAIL, evidence="writable and executable: " + ", ".join(both)
        )
    return Check(name="wx", state=State.PASS, evidence="no segment is writable and executable")


def _stack_clash(note: str) -> Check:
    """-fstack-clash-protection leaves no mark of its own in a linked file; buildkit's
    toolchain note records the flags a file was compiled with."""
    if not note:
        return Check(
            name="stack-clash",
            state=State.UNKNOWN,
            evidence="not recorded in the file (buildkit's toolchain note records it)",
        )
    if all("-fstack-clash-protection" in line.split() for line in note.splitlines()):
        return Check(
            name="stack-clash",
            state=State.PASS,
            evidence="compiled with -fstack-clash-protection (its buildkit notes)",
        )
    return Check(
        name="stack-clash",
        state=State.FAIL,
        evidence="a buildkit note of the file lists no -fstack-clash-protection: "
        + "; ".join(line for line in note.splitlines() if "-fstack-clash" not in line)[:300],
    )


def _compiler(binary: lief.ELF.Binary) -> str:
    """The compilers and linker named in ``.comment`` ("GCC: (Debian 12.2.0-14) 12.2.0;
    Linker: LLD 19.1.7"), each once, bounded."""
    section = _read(lambda: binary.get_section(".comment"), None)
    if section is None:
        return ""
    raw = bytes(_read(lambda: bytes(section.content[:4096]), b""))
    names = dict.fromkeys(
        t for part in raw.split(b"\0") if (t := part.decode("ascii", "replace").strip())
    )
    return "; ".join(list(names)[:8])[:500]


def _rpath(binary: lief.ELF.Binary) -> Check:
    values = []
    for entry in binary.dynamic_entries:
        if isinstance(entry, lief.ELF.DynamicEntryRpath | lief.ELF.DynamicEntryRunPath):
            paths = _strings(lambda: cast(Iterable[object], entry.paths))  # noqa: B023
            values += [f"{_enum_name(entry.tag)}={p}" for p in paths]
    if not values:
        return Check(name="rpath", state=State.PASS, evidence="no RPATH/RUNPATH")
    inside = all(v.split("=", 1)[1].startswith("$ORIGIN") for v in values)
    return Check(
        name="rpath",
        state=State.PASS if inside else State.FAIL,
        evidence=", ".join(values) + (" (inside the artifact)" if inside else ""),
    )


def _symtab_count(binary: lief.ELF.Binary) -> int:
    """Entries of the .symtab section, from its header (its symbols are not parsed)."""
    for section in binary.sections:
        if section.type == lief.ELF.Section.TYPE.SYMTAB:
            return section.size // (section.entry_size or 24)
    return 0


def _stripped(count: int) -> Check:
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


def _version_text(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


def _glibc(binary: lief.ELF.Binary, libc: str) -> Check:
    """The newest GLIBC_/GLIBCXX_/CXXABI_ version the file's imports need (from its
    version requirements, .gnu.version_r), against :data:`GLIBC_BASELINE`."""
    if libc in ("musl", "none"):
        return Check(name="glibc", state=State.NOT_APPLICABLE, evidence=f"libc: {libc}")
    newest: dict[str, tuple[int, ...]] = {}
    none: list[lief.ELF.SymbolVersionRequirement] = []
    for requirement in _read(lambda: list(binary.symbols_version_requirement), none):
        names = _strings(requirement.get_auxiliary_symbols, "name")
        for name in names:
            if (m := _VERSIONED.match(name)) is not None:
                version = tuple(int(p) for p in m.group(2).split("."))
                newest[m.group(1)] = max(newest.get(m.group(1), ()), version)
    if not newest:
        if libc == "glibc":
            return Check(name="glibc", state=State.PASS, evidence="no versioned glibc symbol")
        return Check(name="glibc", state=State.NOT_APPLICABLE, evidence="no glibc symbols")
    needs = ", ".join(f"{k}_{_version_text(v)}" for k, v in sorted(newest.items()))
    over = [k for k, v in sorted(newest.items()) if v > GLIBC_BASELINE[k]]
    baseline = f"baseline GLIBC_{_version_text(GLIBC_BASELINE['GLIBC'])}"
    if over:
        allowed = ", ".join(f"{k}_{_version_text(GLIBC_BASELINE[k])}" for k in over)
        return Check(
            name="glibc",
            state=State.FAIL,
            evidence=f"needs {needs}: newer than {allowed} (older systems refuse to load it)",
        )
    return Check(name="glibc", state=State.PASS, evidence=f"needs {needs} ({baseline})")
