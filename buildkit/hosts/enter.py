"""Run one program inside an emulated host's root, on a throw-away overlay.

``python -m buildkit.hosts.enter SPEC.json`` is started by :func:`buildkit.hosts.store.run_in`
under ``unshare --mount`` (a private mount namespace): every mount made here disappears with
the namespace when the program ends. It mounts an overlay (the cached root below, a scratch
folder above, so the root is never changed), /proc, /dev and /sys, binds the folders asked
for, then runs the program chrooted in the overlay with stdin, stdout and stderr passed
through, and exits with its exit code.

The spec is JSON written by buildkit, never text from a recipe: ``lower``, ``scratch``,
``binds`` ([outside, inside, read_only]), ``argv``, ``env``, ``cwd``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True)


def _inside(merged: Path, path: str) -> Path:
    return merged / path.lstrip("/")


def prepare(spec: dict[str, Any]) -> Path:
    scratch = Path(spec["scratch"])
    upper, work, merged = scratch / "upper", scratch / "work", scratch / "merged"
    for folder in (upper, work, merged):
        folder.mkdir(exist_ok=True)
    _mount(
        "-t",
        "overlay",
        "overlay",
        "-o",
        f"lowerdir={spec['lower']},upperdir={upper},workdir={work}",
        str(merged),
    )
    for name in ("proc", "dev", "sys"):
        _inside(merged, name).mkdir(exist_ok=True)
        _mount("--rbind", f"/{name}", str(_inside(merged, name)))
    resolv = Path("/etc/resolv.conf")
    if resolv.is_file():
        (merged / "etc").mkdir(exist_ok=True)
        dest = merged / "etc" / "resolv.conf"
        if dest.is_symlink():
            dest.unlink()
        shutil.copyfile(resolv, dest)
    for outside, inside, read_only in spec["binds"]:
        dest = _inside(merged, inside)
        if Path(outside).is_dir():
            dest.mkdir(parents=True, exist_ok=True)
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.touch(exist_ok=True)
        _mount("--bind", outside, str(dest))
        if read_only:
            _mount("-o", "remount,bind,ro", str(dest))
    return merged


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    try:
        merged = prepare(spec)
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"buildkit: cannot set up the emulated host: {exc}", file=sys.stderr)
        return 125
    cwd = spec["cwd"]
    _inside(merged, cwd).mkdir(parents=True, exist_ok=True)

    def enter() -> None:
        os.chroot(merged)
        os.chdir(cwd)

    try:
        proc = subprocess.run(spec["argv"], env=spec["env"], preexec_fn=enter, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"buildkit: cannot run {spec['argv'][0]} in the host: {exc}", file=sys.stderr)
        return 126
    except KeyboardInterrupt:
        return 130
    return proc.returncode if proc.returncode >= 0 else 128 - proc.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
