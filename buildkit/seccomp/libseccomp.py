"""The few libseccomp calls buildkit needs, through ctypes, at build time only.

libseccomp knows every architecture's system call table (names and numbers differ between
x86_64 and aarch64; aarch64 has no ``open``, only ``openat``) and compiles a filter into
classic BPF for any of them. buildkit uses it to name the calls QEMU logs only by number,
to check the names in a profile, and to compile the filter a native binary carries. The
binary itself never loads libseccomp: it installs the compiled program with one system
call.
"""

from __future__ import annotations

import ctypes
import errno
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

from ..errors import InputError, ToolError

#: The kernel's audit architecture tokens (linux/audit.h), which libseccomp uses as its own.
TOKENS = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
#: The OCI profile's names for them.
OCI_ARCH = {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64"}

SCMP_ACT_KILL_PROCESS = 0x80000000
SCMP_ACT_ALLOW = 0x7FFF0000
_SCMP_ACT_ERRNO = 0x00050000
_SCMP_FLTATR_ACT_BADARCH = 2
_SCMP_ARCH_NATIVE = 0
_SCMP_CMP_MASKED_EQ = 7
#: clone()'s flag for a thread of the same process (linux/sched.h); its flags are the first
#: argument on both x86_64 and aarch64
CLONE_THREAD = 0x00010000


class _ArgCmp(ctypes.Structure):
    """``struct scmp_arg_cmp``: compare argument ``arg`` (masked by ``datum_a``) with
    ``datum_b``."""

    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


def act_errno(code: int = errno.EPERM) -> int:
    return _SCMP_ACT_ERRNO | (code & 0xFFFF)


@dataclass(frozen=True, kw_only=True)
class _Lib:
    dll: ctypes.CDLL
    version: str


@cache
def _lib() -> _Lib:
    try:  # the loader's own search (find_library would start ldconfig)
        dll = ctypes.CDLL("libseccomp.so.2")
    except OSError as exc:
        raise ToolError(
            f"libseccomp is not installed ({exc})",
            hint="install it: apt-get install libseccomp2 (ci/setup does)",
        ) from None
    dll.seccomp_syscall_resolve_name_arch.argtypes = [ctypes.c_uint32, ctypes.c_char_p]
    dll.seccomp_syscall_resolve_name_arch.restype = ctypes.c_int
    dll.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    dll.seccomp_syscall_resolve_name.restype = ctypes.c_int
    dll.seccomp_syscall_resolve_num_arch.argtypes = [ctypes.c_uint32, ctypes.c_int]
    dll.seccomp_syscall_resolve_num_arch.restype = ctypes.c_void_p
    dll.seccomp_init.argtypes = [ctypes.c_uint32]
    dll.seccomp_init.restype = ctypes.c_void_p
    dll.seccomp_release.argtypes = [ctypes.c_void_p]
    dll.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    dll.seccomp_arch_remove.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    dll.seccomp_arch_native.restype = ctypes.c_uint32
    dll.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
    dll.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                     ctypes.c_uint]  # fmt: skip
    dll.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                           ctypes.c_uint, ctypes.POINTER(_ArgCmp)]  # fmt: skip
    dll.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    dll.seccomp_version.restype = ctypes.c_void_p
    libc = ctypes.CDLL(None)
    libc.free.argtypes = [ctypes.c_void_p]
    version = ctypes.cast(dll.seccomp_version(), ctypes.POINTER(ctypes.c_uint * 3)).contents
    return _Lib(dll=dll, version=".".join(str(v) for v in version))


def available() -> bool:
    """Whether libseccomp can be loaded here (an Alpine root may not have it)."""
    try:
        _lib()
    except ToolError:
        return False
    return True


def version() -> str:
    return _lib().version


def _token(arch: str) -> int:
    if arch not in TOKENS:
        raise InputError(
            f"no seccomp profile for the architecture {arch!r}",
            hint=f"profiles are made for {', '.join(sorted(TOKENS))}",
        )
    return TOKENS[arch]


def number(arch: str, name: str) -> int | None:
    """The call's number on ``arch``, or None when ``arch`` has no call of that name."""
    nr = int(_lib().dll.seccomp_syscall_resolve_name_arch(_token(arch), name.encode()))
    return nr if nr >= 0 else None


def name(arch: str, nr: int) -> str | None:
    """The name of call ``nr`` on ``arch``, or None when libseccomp does not know it."""
    lib = _lib()
    ptr = lib.dll.seccomp_syscall_resolve_num_arch(_token(arch), nr)
    if not ptr:
        return None
    try:
        return ctypes.string_at(ptr).decode()
    finally:
        ctypes.CDLL(None).free(ctypes.c_void_p(ptr))


def compile_bpf(
    arch: str,
    names: Iterable[str],
    *,
    default_action: int,
    socket_families: Iterable[int] | None = None,
    threads_only: bool = False,
    clone3_enosys: bool = False,
) -> bytes:
    """The classic BPF program (``struct sock_filter`` array, little-endian on both
    architectures) that allows ``names`` on ``arch`` and answers every other call, and every
    call of another architecture, with ``default_action``; with ``socket_families``,
    ``socket`` (when in ``names``) only for those address families (its first argument,
    compared as a 32-bit int); with ``threads_only``, ``clone`` only with CLONE_THREAD
    in its flags; with ``clone3_enosys``, ``clone3`` answered with ENOSYS (its flags are
    in memory a filter cannot read; libc then uses clone)."""
    families = None if socket_families is None else sorted(set(socket_families))
    lib = _lib()
    ctx = lib.dll.seccomp_init(default_action)
    if not ctx:
        raise ToolError("libseccomp could not start a filter (seccomp_init)")
    try:
        token = _token(arch)
        if token != int(lib.dll.seccomp_arch_native()):
            _ok(lib.dll.seccomp_arch_add(ctx, token), "seccomp_arch_add")
            _ok(lib.dll.seccomp_arch_remove(ctx, _SCMP_ARCH_NATIVE), "seccomp_arch_remove")
        _ok(lib.dll.seccomp_attr_set(ctx, _SCMP_FLTATR_ACT_BADARCH, default_action), "attr")
        for call in sorted(set(names)):
            if number(arch, call) is None:
                raise InputError(f"{arch} has no system call named {call!r}")
            # A rule names its call by the number on *this* machine (or libseccomp's
            # pseudo number for one this machine lacks); libseccomp translates it.
            nr = int(lib.dll.seccomp_syscall_resolve_name(call.encode()))
            if call == "clone" and threads_only:
                cmp = _ArgCmp(arg=0, op=_SCMP_CMP_MASKED_EQ, datum_a=CLONE_THREAD,
                              datum_b=CLONE_THREAD)  # fmt: skip
                rc = lib.dll.seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, 1, cmp)
                _ok(rc, "rule for clone(CLONE_THREAD…)")
                continue
            if call == "socket" and families is not None:
                for family in families:
                    cmp = _ArgCmp(arg=0, op=_SCMP_CMP_MASKED_EQ, datum_a=0xFFFFFFFF,
                                  datum_b=family)  # fmt: skip
                    rc = lib.dll.seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, 1, cmp)
                    _ok(rc, f"rule for socket({family}, …)")
                continue
            _ok(lib.dll.seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0), f"rule for {call}")
        if clone3_enosys and number(arch, "clone3") is not None:
            nr = int(lib.dll.seccomp_syscall_resolve_name(b"clone3"))
            rc = lib.dll.seccomp_rule_add(ctx, act_errno(errno.ENOSYS), nr, 0)
            _ok(rc, "rule for clone3")
        with tempfile.TemporaryFile() as out:
            _ok(lib.dll.seccomp_export_bpf(ctx, out.fileno()), "seccomp_export_bpf")
            out.seek(0)
            return out.read()
    finally:
        lib.dll.seccomp_release(ctx)


def _ok(rc: int, what: str) -> None:
    if rc < 0:
        raise ToolError(f"libseccomp failed: {what}: {os.strerror(-rc)}")
