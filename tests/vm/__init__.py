"""A throw-away aarch64 virtual machine for the tests: Debian's arm64 kernel under
qemu-system-aarch64 (full-system emulation, TCG), booted with an initramfs holding the
programs to run, their glibc (from the linux-arm64 emulated host's root) and a small
init (init.c) that runs them and powers off.

It exists for what QEMU's user mode cannot do: there the guest's seccomp() is
ENOSYS, so a binary's own seccomp filter is only provable on an aarch64 kernel. The
kernel package is pinned by sha256 and kept in the test cache (``sources.fetch``);
Debian removes superseded point-release files from its pool: when the URL stops working,
pin the package of the current point release (Packages of bookworm/main/binary-arm64).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from buildkit.cache import Cache
from buildkit.hosts import Source
from buildkit.hosts.musl import deb_member
from buildkit.hosts.sources import fetch

KERNEL_VERSION = "6.1.0-50-cloud-arm64"
KERNEL = Source(
    name="linux-image",
    url="http://deb.debian.org/debian/pool/main/l/linux-signed-arm64/"
    f"linux-image-{KERNEL_VERSION}_6.1.176-1_arm64.deb",
    sha256="9d41a53f5d687ae1a33cf546d0ed8be955f72e5f9e97b2b4e45e41dff3353b97",
    what="Debian bookworm linux-image-6.1.0-50-cloud-arm64 6.1.176-1",
)
QEMU = "qemu-system-aarch64"
INIT_C = Path(__file__).with_name("init.c")


@dataclass(frozen=True, kw_only=True)
class Ran:
    """One line of the VM's /commands: its exit status and what it printed."""

    argv: tuple[str, ...]
    code: int
    output: str


def available() -> str | None:
    """Why the VM cannot run here, or None."""
    if shutil.which(QEMU) is None:
        return f"needs {QEMU} (ci/setup installs Debian's qemu-system-arm)"
    return None


def kernel(cache: Cache, dest: Path) -> Path:
    """The pinned arm64 kernel image, out of its verified Debian package."""
    deb = fetch(KERNEL, cache)
    path = dest / f"vmlinuz-{KERNEL_VERSION}"
    if not path.is_file():
        path.write_bytes(deb_member(deb, f"boot/vmlinuz-{KERNEL_VERSION}"))
    return path


def init_program(dest: Path) -> Path:
    """init.c, compiled by the toolkit's zig for aarch64, static (musl)."""
    out = dest / "init"
    subprocess.run(
        [sys.executable, "-m", "ziglang", "cc", "-target", "aarch64-linux-musl", "-static",
         "-O2", "-o", out, INIT_C],
        check=True, capture_output=True,
    )  # fmt: skip
    return out


def glibc_files(root: Path) -> dict[str, Path]:
    """libc6's shared objects in the Debian root (path in the image -> file), with the
    loader at /lib/ld-linux-aarch64.so.1 (the path the programs ask for), and the
    root's compiled locales."""
    listing = root / "var/lib/dpkg/info/libc6:arm64.list"
    files: dict[str, Path] = {}
    for line in listing.read_text().splitlines():
        rel = line.strip().lstrip("/")
        if re.search(r"\.so(\.[0-9.]+)?$", rel) and "/gconv/" not in rel:
            path = root / rel
            if path.is_file():  # follows the root's own links; kept as copies
                files[rel] = path.resolve()
    files["lib/ld-linux-aarch64.so.1"] = (root / "lib/ld-linux-aarch64.so.1").resolve()
    # C.UTF-8 (libc-bin's): Nuitka's onefile bootstrap calls newlocale(LC_CTYPE, "UTF-8")
    # and aborts, silently, where glibc finds no such locale
    for path in sorted((root / "usr/lib/locale").rglob("*")):
        if path.is_file():
            files[str(path.relative_to(root))] = path
    return files


def _cpio_entry(out: io.BytesIO, name: str, mode: int, data: bytes, ino: int) -> None:
    """One entry of the kernel's initramfs format ("newc" cpio, see the kernel's
    Documentation/driver-api/early-userspace/buffer-format.rst)."""
    encoded = name.encode() + b"\0"
    fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0)
    out.write(b"070701" + b"".join(b"%08X" % f for f in fields) + encoded)
    out.write(b"\0" * (-(110 + len(encoded)) % 4))
    out.write(data)
    out.write(b"\0" * (-len(data) % 4))


def initramfs(dest: Path, files: dict[str, Path], commands: list[list[str]]) -> Path:
    """An uncompressed newc archive: ``files`` (path in the image -> file on this
    machine; executables keep their mode), /commands (one tab-separated line each) and
    the folders they need."""
    out = io.BytesIO()
    folders: set[str] = set()
    for rel in files:
        parts = rel.split("/")[:-1]
        folders.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    ino = 1
    for folder in sorted(folders):
        _cpio_entry(out, folder, stat.S_IFDIR | 0o755, b"", ino)
        ino += 1
    text = "".join("\t".join(argv) + "\n" for argv in commands).encode()
    _cpio_entry(out, "commands", stat.S_IFREG | 0o644, text, ino)
    for rel, path in sorted(files.items()):
        ino += 1
        mode = 0o755 if os.access(path, os.X_OK) else 0o644
        _cpio_entry(out, rel, stat.S_IFREG | mode, path.read_bytes(), ino)
    _cpio_entry(out, "TRAILER!!!", 0, b"", 0)
    image = dest / "initramfs.cpio"
    image.write_bytes(out.getvalue())
    return image


def boot(kernel_image: Path, image: Path, commands: list[list[str]], *,
         timeout: float = 600, quiet: bool = True) -> tuple[list[Ran], str]:  # fmt: skip
    """Boot the VM (2 CPUs, 1 GiB, no network card, no disk) and run the commands; the
    results in order and the whole console log. A VM that does not power off in
    ``timeout`` seconds is killed (subprocess.TimeoutExpired). To see why a program
    died: ``quiet=False`` and ``BUILDKIT_VM_APPEND=print-fatal-signals=1`` (the
    kernel then logs the registers of every fatally signalled process)."""
    argv = [
        QEMU, "-machine", "virt", "-cpu", "max", "-smp", "2", "-m", "1024",
        "-nographic", "-no-reboot", "-nic", "none",
        "-kernel", str(kernel_image), "-initrd", str(image),
        "-append", "console=ttyAMA0 rdinit=/init panic=-1 " + os.environ.get("BUILDKIT_VM_APPEND", "") + (" quiet loglevel=1" if quiet else ""),
    ]  # fmt: skip
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, timeout=timeout, check=False,
                          stdin=subprocess.DEVNULL)  # fmt: skip
    log = proc.stdout.decode(errors="replace").replace("\r\n", "\n")
    log += f"\n[{QEMU} exit {proc.returncode} after {time.monotonic() - started:.0f} s]\n"
    results: list[Ran] = []
    for match in re.finditer(r"^BK-RUN (\d+)\n(.*?)^BK-EXIT \1 (\d+)$", log, re.S | re.M):
        n = int(match.group(1))
        results.append(
            Ran(argv=tuple(commands[n - 1]), code=int(match.group(3)), output=match.group(2))
        )
    return results, log
