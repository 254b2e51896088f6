"""The onefile guard (buildkit/backends/onefile_guard.c), compiled with gcc into a small
program exactly as the Nuitka plugin generates it, and started against real folders:
missing, owned by another user, writable by others, replaced by a symbolic link. The
Nuitka binaries themselves are checked in test_nuitka.py."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from buildkit.backends.nuitka_guard import guard_source

pytestmark = pytest.mark.integration

LEAF = "demo-1.0.0-linux-amd64-0123456789abcdef0123"
TAIL = f"buildkit/run/{LEAF}"
REFUSED = 126
OTHER_UID = 4242


@pytest.fixture(scope="module")
def program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A program whose main() says it ran, with the guard linked in as the plugin makes it."""
    folder = tmp_path_factory.mktemp("guard")
    (folder / "onefile_buildkit_guard.c").write_text(guard_source("{CACHE_DIR}/" + TAIL))
    (folder / "main.c").write_text(
        '#include <stdio.h>\nint main(void) { puts("ran"); return 0; }\n'
    )
    exe = folder / "demo"
    subprocess.run(
        ["gcc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2", "-D_FORTIFY_SOURCE=2", "-o", exe,
         folder / "onefile_buildkit_guard.c", folder / "main.c"],
        check=True,
    )  # fmt: skip
    return exe


def start(program: Path, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ["PATH"], "HOME": str(home)}
    return subprocess.run(
        [program], env={**base, **env}, capture_output=True, text=True, check=False
    )


def refused(
    proc: subprocess.CompletedProcess[str], folder: Path, why: str, what: str = "extraction"
) -> None:
    assert proc.returncode == REFUSED, proc
    assert proc.stdout == ""  # main() never ran
    first = proc.stderr.splitlines()[0]
    assert first.startswith("demo-1.0.0-linux-amd64: error: refusing to start:"), first
    assert f"the {what} folder {folder} {why}" in first, first
    assert proc.stderr.splitlines()[1].startswith("  hint: ")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    return home


def test_missing_folders_are_made_private(program: Path, home: Path) -> None:
    proc = start(program, home)
    assert (proc.returncode, proc.stdout) == (0, "ran\n"), proc.stderr
    leaf = home / ".cache" / TAIL
    for folder in [leaf, leaf.parent, leaf.parent.parent, home / ".cache"]:
        assert folder.is_dir() and not folder.is_symlink()
        assert folder.stat().st_mode & 0o777 == 0o700, folder
        assert folder.stat().st_uid == os.geteuid()
    assert start(program, home).stdout == "ran\n"  # and a second start is content


def test_relative_xdg_cache_home_is_ignored_as_nuitka_does(program: Path, home: Path) -> None:
    assert start(program, home, XDG_CACHE_HOME="relative/cache").stdout == "ran\n"
    assert (home / ".cache" / TAIL).is_dir()


def test_writable_by_others_is_refused_at_every_level(program: Path, home: Path) -> None:
    assert start(program, home).returncode == 0
    leaf = home / ".cache" / TAIL
    for folder, mode, who in [
        (leaf, 0o777, "others"),
        (leaf, 0o770, "its group"),
        (leaf.parent, 0o757, "others"),
        (leaf.parent.parent, 0o730, "its group"),
    ]:
        folder.chmod(mode)
        refused(start(program, home), folder, f"is writable by {who} (mode {mode:04o})")
        folder.chmod(0o700)
    assert start(program, home).stdout == "ran\n"


def test_a_symbolic_link_is_refused_and_its_target_untouched(
    program: Path, home: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    leaf = home / ".cache" / TAIL
    leaf.parent.mkdir(parents=True, mode=0o700)
    leaf.symlink_to(elsewhere)
    refused(start(program, home), leaf, "is a symbolic link")
    assert list(elsewhere.iterdir()) == []
    leaf.unlink()  # what the hint says
    assert start(program, home).stdout == "ran\n"


def test_a_file_in_place_of_the_folder_is_refused(program: Path, home: Path) -> None:
    leaf = home / ".cache" / TAIL
    leaf.parent.mkdir(parents=True, mode=0o700)
    leaf.write_text("not a folder")
    refused(start(program, home), leaf, "is not a folder")


@pytest.mark.skipif(os.geteuid() != 0, reason="making a folder another user's needs root")
def test_folders_of_another_user_are_refused(program: Path, home: Path) -> None:
    assert start(program, home).returncode == 0
    leaf = home / ".cache" / TAIL
    for folder in [leaf, leaf.parent.parent]:
        os.chown(folder, OTHER_UID, OTHER_UID)
        refused(
            start(program, home),
            folder,
            f"is owned by uid {OTHER_UID}, not by the user running this (uid {os.geteuid()})",
        )
        os.chown(folder, os.geteuid(), os.getegid())
    assert start(program, home).stdout == "ran\n"


def test_the_cache_folder_may_be_sticky_shared_but_not_open(
    program: Path, home: Path, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # like /tmp: others cannot take over what we make in it
    proc = start(program, home, XDG_CACHE_HOME=str(shared))
    assert proc.stdout == "ran\n", proc.stderr
    assert (shared / "buildkit").stat().st_mode & 0o777 == 0o700
    shared.chmod(0o777)  # not sticky: anyone could rename our folders away
    proc = start(program, home, XDG_CACHE_HOME=str(shared))
    refused(proc, shared, "is writable by others (mode 0777)", what="cache")
    assert "XDG_CACHE_HOME" in proc.stderr
    shared.chmod(0o700)
    if os.geteuid() == 0:  # root with another user's HOME (sudo without -H)
        os.chown(shared, OTHER_UID, OTHER_UID)
        proc = start(program, home, XDG_CACHE_HOME=str(shared))
        refused(proc, shared, f"is owned by uid {OTHER_UID}", what="cache")


def test_no_proc_is_said_in_one_line_not_an_abort(program: Path, home: Path) -> None:
    """Issue 38 item 7: in a root without /proc mounted, Nuitka's bootstrap aborted
    (SIGABRT, no message). The guard says what is missing and exits 126."""
    if os.geteuid() != 0:
        pytest.skip("needs root to unmount /proc in a mount namespace")
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         'umount -l /proc && exec "$0"', program],
        env={"PATH": os.environ["PATH"], "HOME": str(home)},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == REFUSED, proc
    assert proc.stdout == ""
    assert proc.stderr.startswith(
        "demo-1.0.0-linux-amd64: error: refusing to start: /proc/self/exe cannot be read"
    ), proc.stderr
    assert "mount -t proc proc /proc" in proc.stderr
