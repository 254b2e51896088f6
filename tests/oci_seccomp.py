"""Run a program under an OCI seccomp profile the way runc does: the profile's rules are
given to libseccomp (``seccomp_rule_add_array``), the filter is loaded with
``seccomp_load``, then the program is exec'd. As root (runc's usual case) no_new_privs is
left unset, as runc leaves it unless the container asks for it.

    python -m tests.oci_seccomp PROFILE.json -- PROGRAM ARGS...

This is the consumer the release's profile is written for, independent of buildkit's own
filter compiler (buildkit.seccomp.libseccomp): the test proves the shipped profile, not
our reading of it.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys

_OPS = {
    "SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7,
}  # fmt: skip
_ACTIONS = {"SCMP_ACT_ALLOW": 0x7FFF0000, "SCMP_ACT_KILL_PROCESS": 0x80000000}
_ARCHES = {"SCMP_ARCH_X86_64": 0xC000003E, "SCMP_ARCH_AARCH64": 0xC00000B7}
_ATTR_NNP = 3


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]  # fmt: skip


def _action(name: str, errno_ret: int) -> int:
    if name == "SCMP_ACT_ERRNO":
        return 0x00050000 | errno_ret
    return _ACTIONS[name]


def load(profile: dict[str, object]) -> None:
    lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                           ctypes.c_uint, ctypes.POINTER(_ArgCmp)]  # fmt: skip
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    errno_ret = int(profile.get("defaultErrnoRet", 1))  # type: ignore[call-overload]
    ctx = lib.seccomp_init(_action(str(profile["defaultAction"]), errno_ret))
    assert ctx, "seccomp_init failed"
    for arch in profile.get("architectures", []):  # type: ignore[attr-defined]
        rc = lib.seccomp_arch_add(ctx, _ARCHES[arch])
        assert rc in (0, -17), f"seccomp_arch_add({arch}): {rc}"  # -EEXIST: native
    if os.geteuid() == 0:
        assert lib.seccomp_attr_set(ctx, _ATTR_NNP, 0) == 0
    for rule in profile["syscalls"]:  # type: ignore[attr-defined]
        action = _action(rule["action"], int(rule.get("errnoRet", errno_ret)))
        args = rule.get("args") or []
        cmps = (_ArgCmp * max(len(args), 1))(*[
            _ArgCmp(arg=a["index"], op=_OPS[a["op"]], datum_a=a["value"],
                    datum_b=a.get("valueTwo", 0))
            for a in args
        ])  # fmt: skip
        for name in rule["names"]:
            nr = lib.seccomp_syscall_resolve_name(name.encode())
            assert nr != -1, f"libseccomp does not know {name}"
            rc = lib.seccomp_rule_add_array(ctx, action, nr, len(args), cmps)
            assert rc == 0, f"rule for {name}: {rc}"
    rc = lib.seccomp_load(ctx)
    assert rc == 0, f"seccomp_load: {rc}"


def main(argv: list[str]) -> None:
    profile_path, sep, *program = argv
    assert sep == "--" and program, __doc__
    with open(profile_path, encoding="utf-8") as f:
        load(json.load(f))
    os.execv(program[0], program)


if __name__ == "__main__":
    main(sys.argv[1:])
