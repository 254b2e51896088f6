"""Known-good and known-bad binaries compiled here from small C files, for both
architectures, both libcs and Mach-O: each check's state is what the flags predict.

Compilers: gcc (x86-64 glibc), Debian's aarch64-linux-gnu-gcc (aarch64 glibc), zig from
PyPI (aarch64 musl, arm64 and x86-64 Mach-O). Mach-O properties zig's linker has no flag
for (no PIE, executable stack, no-heap-execution, hardened runtime) are set by patching
the header or code directory flags of a real zig-built file.
"""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest

from buildkit.audit import elf, macho
from buildkit.audit.findings import FileReport, State

pytestmark = pytest.mark.integration

PROGRAM = (
    "#include <stdio.h>\n#include <string.h>\n"
    "int main(int argc, char **argv) { char buf[64]; strcpy(buf, argv[0]);"
    ' printf("%s %d\\n", buf, argc); return 0; }\n'
)
LIBRARY = (
    "#include <string.h>\n"
    "int probe(char *d, const char *s) { char b[64]; strcpy(b, s); return (int)strlen(b) + d[0]; }\n"
)
HARDENED = [
    "-O2",
    "-fstack-protector-strong",
    "-D_FORTIFY_SOURCE=2",
    "-fPIE",
    "-pie",
    "-Wl,-z,relro,-z,now",
    "-Wl,-z,noexecstack",
]
BARE = ["-O2", "-fno-stack-protector", "-U_FORTIFY_SOURCE", "-no-pie", "-Wl,-z,norelro"]
ZIG = [sys.executable, "-m", "ziglang", "cc"]


def compile_c(tmp: Path, compiler: list[str], flags: list[str], *, lib: bool = False) -> Path:
    src = tmp / ("lib.c" if lib else "main.c")
    src.write_text(LIBRARY if lib else PROGRAM)
    out = tmp / f"out-{abs(hash((tuple(compiler), tuple(flags), lib)))}"
    proc = subprocess.run(
        [*compiler, *flags, str(src), "-o", str(out)], check=False, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    return out


def states(report: FileReport, *names: str) -> dict[str, State]:
    got = {}
    for name in names:
        check = report.check(name)
        assert check is not None, (name, report)
        assert check.evidence
        got[name] = check.state
    return got


ELF_CASES = {
    # (compiler, flags) -> expected states
    "x86-64 glibc hardened": (
        ["gcc"],
        [*HARDENED],
        {
            "relro": State.PASS,
            "canary": State.PASS,
            "nx": State.PASS,
            "pie": State.PASS,
            "fortify": State.PASS,
            "bti": State.NOT_APPLICABLE,
        },
    ),
    "x86-64 glibc bare": (
        ["gcc"],
        [*BARE, "-Wl,-z,execstack"],
        {
            "relro": State.FAIL,
            "canary": State.FAIL,
            "nx": State.FAIL,
            "pie": State.FAIL,
            "fortify": State.FAIL,
        },
    ),
    "aarch64 glibc hardened": (
        ["aarch64-linux-gnu-gcc"],
        [*HARDENED],
        {
            "relro": State.PASS,
            "canary": State.PASS,
            "nx": State.PASS,
            "pie": State.PASS,
            "fortify": State.PASS,
            "cet": State.NOT_APPLICABLE,
        },
    ),
    "aarch64 glibc bare": (
        ["aarch64-linux-gnu-gcc"],
        [*BARE, "-Wl,-z,execstack"],
        {
            "relro": State.FAIL,
            "canary": State.FAIL,
            "nx": State.FAIL,
            "pie": State.FAIL,
            "fortify": State.FAIL,
        },
    ),
    "aarch64 musl hardened": (
        [*ZIG, "-target", "aarch64-linux-musl", "-dynamic"],
        ["-O2", "-fstack-protector-strong", "-fPIE", "-pie", "-Wl,-z,relro,-z,now"],
        {
            "relro": State.PASS,
            "canary": State.PASS,
            "nx": State.PASS,
            "pie": State.PASS,
            "fortify": State.NOT_APPLICABLE,
        },
    ),
    "aarch64 musl bare": (
        [*ZIG, "-target", "aarch64-linux-musl", "-dynamic"],
        ["-O2", "-fno-stack-protector", "-no-pie", "-Wl,-z,norelro"],
        {
            "relro": State.FAIL,
            "canary": State.FAIL,
            "pie": State.FAIL,
            "fortify": State.NOT_APPLICABLE,
        },
    ),
}
ARCH_LIBC = {
    "x86-64 glibc": ("x86-64", "glibc"),
    "aarch64 glibc": ("aarch64", "glibc"),
    "aarch64 musl": ("aarch64", "musl"),
}


@pytest.mark.parametrize("case", list(ELF_CASES))
def test_elf_checks_follow_the_flags(tmp_path: Path, case: str) -> None:
    compiler, flags, expect = ELF_CASES[case]
    binary = compile_c(tmp_path, compiler, flags)
    report = elf.audit(binary.read_bytes(), str(binary))
    assert states(report, *expect) == expect
    assert (report.arch, report.libc) == ARCH_LIBC[case.rsplit(" ", 1)[0]]
    assert report.kind == ("pie-executable" if "hardened" in case else "executable")
    assert report.check("stripped").state is State.FAIL  # gcc keeps .symtab by default
    stripped = tmp_path / "stripped"
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import shutil,sys; shutil.copy(sys.argv[1], sys.argv[2])",
            binary,
            stripped,
        ],
        check=True,
    )
    strip = "aarch64-linux-gnu-strip" if report.arch == "aarch64" else "strip"
    subprocess.run([strip, str(stripped)], check=True)
    assert elf.audit(stripped.read_bytes(), "s").check("stripped").state is State.PASS


@pytest.mark.parametrize(
    ("compiler", "marked", "unmarked", "check", "features"),
    [
        (["gcc"], ["-fcf-protection=full"], ["-fcf-protection=none"], "cet", "IBT, SHSTK"),
        (
            ["aarch64-linux-gnu-gcc"],
            ["-mbranch-protection=standard"],
            ["-mbranch-protection=none"],
            "bti",
            "BTI, PAC",
        ),
        (
            [*ZIG, "-target", "aarch64-linux-musl"],
            ["-mbranch-protection=standard"],
            ["-mbranch-protection=none"],
            "bti",
            "BTI, PAC",
        ),
    ],
    ids=["x86-64 CET", "aarch64 glibc BTI", "aarch64 musl BTI"],
)
def test_control_flow_protection_from_the_property_note(  # noqa: PLR0917
    tmp_path: Path,
    compiler: list[str],
    marked: list[str],
    unmarked: list[str],
    check: str,
    features: str,
) -> None:
    # Shared objects without the C runtime's start files: Debian's crt objects carry no
    # property note, and the linker keeps a feature only when every input has it.
    extra = ["-O2", "-shared", "-fPIC"] + (
        [] if compiler[0] == sys.executable else ["-nostartfiles"]
    )
    good = elf.audit(compile_c(tmp_path, compiler, [*extra, *marked], lib=True).read_bytes(), "g")
    bad = elf.audit(compile_c(tmp_path, compiler, [*extra, *unmarked], lib=True).read_bytes(), "b")
    assert good.check(check).state is State.PASS
    assert good.check(check).evidence == f"GNU property note: {features}"
    assert bad.check(check).state is State.FAIL
    assert good.kind == bad.kind == "shared-library"
    assert good.check("pie").state is State.NOT_APPLICABLE


def test_cet_flag_alone_does_not_mark_a_debian_executable(tmp_path: Path) -> None:
    """-fcf-protection marks our objects, but Debian's crt1.o/crti.o are not marked, so the
    linked executable has no IBT/SHSTK: the audit reports what the loader will see."""
    binary = compile_c(tmp_path, ["gcc"], ["-O2", "-fcf-protection=full"])
    check = elf.audit(binary.read_bytes(), "x").check("cet")
    assert check.state is State.FAIL and "missing IBT, SHSTK" in check.evidence


# --- Mach-O ---------------------------------------------------------------------------


def zig_macho(tmp: Path, arch: str, flags: list[str], *, lib: bool = False) -> Path:
    target = ["-target", f"{arch}-macos"]
    return compile_c(tmp, [*ZIG, *target], ["-O2", *flags, *(["-shared"] if lib else [])], lib=lib)


def patch_header_flags(path: Path, set_bits: int = 0, clear_bits: int = 0) -> bytes:
    data = bytearray(path.read_bytes())
    (flags,) = struct.unpack_from("<I", data, 24)  # mach_header_64.flags
    struct.pack_into("<I", data, 24, (flags | set_bits) & ~clear_bits)
    return bytes(data)


def test_macho_arm64_executable(tmp_path: Path) -> None:
    binary = zig_macho(tmp_path, "aarch64", ["-fstack-protector-strong"])
    (report,) = macho.audit(binary.read_bytes(), "app")
    assert (report.format, report.kind, report.arch) == ("mach-o", "pie-executable", "arm64")
    assert states(report, "pie", "canary", "nx", "nx-heap", "codesign", "pagezero") == {
        "pie": State.PASS,
        "canary": State.PASS,
        "nx": State.PASS,
        "nx-heap": State.PASS,  # arm64: never an executable heap
        "codesign": State.PASS,  # zig signs ad hoc, as arm64 macOS requires
        "pagezero": State.PASS,
    }
    assert report.check("hardened-runtime").state is State.FAIL  # ad hoc, no runtime flag
    (bare,) = macho.audit(
        zig_macho(tmp_path, "aarch64", ["-fno-stack-protector"]).read_bytes(), "b"
    )
    assert bare.check("canary").state is State.FAIL
    patched = patch_header_flags(
        binary, set_bits=macho.MH_ALLOW_STACK_EXECUTION, clear_bits=macho.MH_PIE
    )
    (worse,) = macho.audit(patched, "p")
    assert worse.check("nx").state is State.FAIL and worse.check("pie").state is State.FAIL


def test_macho_x86_64_heap_flag_is_read_from_the_header(tmp_path: Path) -> None:
    binary = zig_macho(tmp_path, "x86_64", ["-fstack-protector-strong"])
    (report,) = macho.audit(binary.read_bytes(), "app")
    assert report.arch == "x86-64"
    # LIEF 1.0's has_nx_heap says True here although the flag is not set: we read the flag.
    assert report.check("nx-heap").state is State.FAIL
    assert report.check("codesign").state is State.FAIL  # zig does not sign x86-64
    (fixed,) = macho.audit(patch_header_flags(binary, set_bits=macho.MH_NO_HEAP_EXECUTION), "p")
    assert fixed.check("nx-heap").state is State.PASS


def test_macho_hardened_runtime_from_the_code_directory(tmp_path: Path) -> None:
    binary = zig_macho(tmp_path, "aarch64", [])
    data = bytearray(binary.read_bytes())
    import lief

    parsed = lief.MachO.parse(str(binary)).at(0)
    sig = parsed.code_signature
    blob = bytes(sig.content)
    flags = macho.code_directory_flags(blob)
    assert flags is not None and not flags & macho.CS_RUNTIME
    # the first code directory's flags word sits 12 bytes into it
    (offset,) = struct.unpack_from(">I", blob, 16)
    at = sig.data_offset + offset + 12
    assert struct.unpack_from(">I", data, at)[0] == flags
    struct.pack_into(">I", data, at, flags | macho.CS_RUNTIME)
    (report,) = macho.audit(bytes(data), "runtime")
    assert report.check("hardened-runtime").state is State.PASS


def test_macho_dylib_and_universal_binary(tmp_path: Path) -> None:
    lib = zig_macho(tmp_path, "aarch64", ["-fstack-protector-strong"], lib=True)
    (report,) = macho.audit(lib.read_bytes(), "lib.dylib")
    assert report.kind == "shared-library"
    assert {n: report.check(n).state for n in ("pie", "hardened-runtime", "pagezero")} == {
        "pie": State.NOT_APPLICABLE,
        "hardened-runtime": State.NOT_APPLICABLE,
        "pagezero": State.NOT_APPLICABLE,
    }
    arm = zig_macho(tmp_path, "aarch64", ["-fstack-protector-strong"]).read_bytes()
    x86 = zig_macho(tmp_path, "x86_64", ["-fno-stack-protector"]).read_bytes()
    fat = universal([(0x0100000C, 0, arm), (0x01000007, 3, x86)])
    reports = macho.audit(fat, "app")
    assert [r.path for r in reports] == ["app[arm64]", "app[x86-64]"]
    assert [r.check("canary").state for r in reports] == [State.PASS, State.FAIL]
    end_of_x86 = len(fat) - (-len(x86) % (1 << 14))
    truncated = macho.audit(fat[: end_of_x86 - 4096], "cut")
    assert truncated[-1].check("parse") is not None  # the cut slice is a finding


def universal(slices: list[tuple[int, int, bytes]]) -> bytes:
    """A fat Mach-O file (FAT_MAGIC, big-endian headers, slices 16 KiB aligned)."""
    align = 14
    header = struct.pack(">II", 0xCAFEBABE, len(slices))
    offset = 1 << align
    body = b""
    for cpu, sub, data in slices:
        header += struct.pack(">iiIII", cpu, sub, offset + len(body), len(data), align)
        body += data + bytes(-len(data) % (1 << align))
    return header + bytes(offset - len(header)) + body


@pytest.mark.parametrize(
    ("flags", "kind", "rpath"),
    [
        (["-Wl,-rpath,/opt/vendor/lib"], "pie-executable", State.FAIL),
        (["-Wl,-rpath,$ORIGIN/../lib", "-Wl,--enable-new-dtags"], "pie-executable", State.PASS),
        (["-static"], "static", State.PASS),
        (["-static-pie"], "static-pie", State.PASS),
    ],
    ids=["rpath outside", "runpath $ORIGIN", "static", "static-pie"],
)
def test_rpath_and_static_kinds(tmp_path: Path, flags: list[str], kind: str, rpath: State) -> None:
    binary = compile_c(tmp_path, ["gcc"], ["-O2", "-fstack-protector-strong", *flags])
    report = elf.audit(binary.read_bytes(), str(binary))
    assert report.kind == kind
    assert report.check("rpath").state is rpath
    if kind.startswith("static"):
        assert report.libc == "none"
        assert report.check("pie").state is (State.PASS if kind == "static-pie" else State.FAIL)
        # no dynamic symbols: the canary is found in the symbol table
        assert report.check("canary").state is State.PASS


# Each hardening flag on its own: dropping it (or using its opposite) changes exactly the
# check it is for, and nothing else.
ONE_FLAG = {
    "canary": (["-fstack-protector-strong"], ["-fno-stack-protector"]),
    "fortify": (["-D_FORTIFY_SOURCE=2"], ["-U_FORTIFY_SOURCE"]),
    "pie": (["-fPIE", "-pie"], ["-fno-PIE", "-no-pie"]),
    "relro": (["-Wl,-z,relro,-z,now"], ["-Wl,-z,relro,-z,lazy"]),
    "nx": (["-Wl,-z,noexecstack"], ["-Wl,-z,execstack"]),
}


@pytest.mark.parametrize("compiler", ["gcc", "aarch64-linux-gnu-gcc"])
@pytest.mark.parametrize("check", list(ONE_FLAG))
def test_each_flag_moves_only_its_check(tmp_path: Path, compiler: str, check: str) -> None:
    def build(flags_for: dict[str, list[str]]) -> FileReport:
        flags = ["-O2"] + [f for group in flags_for.values() for f in group]
        binary = compile_c(tmp_path, [compiler], flags)
        return elf.audit(binary.read_bytes(), str(binary))

    good = {name: on for name, (on, _) in ONE_FLAG.items()}
    with_flag = build(good)
    without = build({**good, check: ONE_FLAG[check][1]})
    changed = {
        c.name
        for c in with_flag.checks
        if c.state is not without.check(c.name).state  # type: ignore[union-attr]
    }
    assert with_flag.check(check).state is State.PASS  # type: ignore[union-attr]
    assert changed == {check}, (with_flag, without)
    if check == "relro":
        assert without.check("relro").evidence.startswith("partial")  # type: ignore[union-attr]


CLEAR_CACHE = """
#include <stdio.h>
#include <string.h>
int main(int argc, char **argv) {
    char buf[64];
    strcpy(buf, argv[0]);
    %s
    return puts(buf);
}
"""


@pytest.mark.parametrize(
    ("target", "pulls_compiler_rt", "state"),
    [
        ("aarch64-linux-musl", False, State.PASS),
        ("aarch64-linux-musl", True, State.FAIL),
        ("aarch64-linux-gnu.2.17", True, State.FAIL),
        ("x86_64-linux-musl", True, State.PASS),  # x86-64 reads the canary from TLS
    ],
    ids=["musl libc's guard", "musl compiler-rt's guard", "glibc compiler-rt's guard", "x86-64"],
)
def test_a_constant_canary_guard_fails(
    tmp_path: Path, target: str, *, pulls_compiler_rt: bool, state: State
) -> None:
    """zig's compiler-rt defines a __stack_chk_guard that nothing randomises; once any
    object needs compiler-rt (here __clear_cache, as CPython 3.12's perf trampoline does),
    it wins over libc's, and on aarch64 every canary compares against that constant."""
    src = tmp_path / "main.c"
    call = "__builtin___clear_cache(buf, buf + sizeof buf);" if pulls_compiler_rt else ""
    src.write_text(CLEAR_CACHE % call)

    def build(*extra: str) -> str:
        out = tmp_path / ("main" + "".join(extra))
        subprocess.run(
            [*ZIG, "-target", target, "-O2", "-fstack-protector-strong", "-fPIE", "-pie",
             *(["-dynamic"] if "musl" in target else []), *extra, str(src), "-o", str(out)],
            check=True, capture_output=True,
        )  # fmt: skip
        return str(out)

    canary = elf.audit(build(), "main").check("canary")
    assert canary.state is state, canary
    if state is State.FAIL:
        assert "compiler_rt.ssp.__stack_chk_guard" in canary.evidence
        # stripped (as Nuitka links), the guard's origin cannot be read: no pass either
        stripped = elf.audit(build("-s"), "main").check("canary")
        assert stripped.state is State.FAIL, stripped
