"""How a zipapp starts on a shared host: isolated, from private folders, with its entry
called as a console script.

Both zipapps extract to a folder under the user's home (pex: a venv under
``~/.cache/pex``; shiv: ``~/.shiv``) and then import from it. On a shared bastion host
that folder is what an attacker aims at: a group member who can write it plants a
``.pth`` that runs at the owner's next start. And a zipapp started as ``python3.X
app.pyz`` honours ``PYTHONPATH`` and the user site, so what runs is not only what was
pinned. buildkit's zipapps therefore start through a POSIX ``sh`` header that

* sets ``umask 077`` while the zipapp extracts (folders 0700, files 0600), and hands the
  user's own umask back to the program before its entry runs (``BUILDKIT_UMASK``);
* refuses (exit 126, naming the folder and what to do) an extraction root, or an
  extraction folder inside it, that is a symbolic link, belongs to another user or can
  be written by group or others, as the onefile bootstrap does;
* shiv: starts ``python3.X -I`` (no ``PYTHON*`` variables, no user site, no current
  folder on ``sys.path``), says in one line which Python it needs when there is none
  (exit 2), and uses a private folder under ``$XDG_RUNTIME_DIR`` or ``$TMPDIR`` when
  ``$HOME`` cannot be written (``_FALLBACK``: a folder another user planted there is
  passed over, never a reason to stop);
  pex: keeps pex's own boot (which already runs ``python -I``) with the checks added.

The entry point of both is ``__buildkit_boot__:main``, a module buildkit adds to the
app: it refuses, in one line and with exit 2, an interpreter the app was not built for
(a pex whose wheels are all pure Python or abi3 runs on later versions as well), restores
the umask, then imports the recipe's ``module`` and calls its
``attr[.attr]`` as console scripts do (pex and shiv disagree on ``pkg:name`` when
``pkg.name`` is also a submodule).
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path

from ..fsutil import atomic_write_bytes

BOOT_MODULE = "__buildkit_boot__"
BOOT_ENTRY = f"{BOOT_MODULE}:main"

_BOOT = '''\
"""Started by buildkit: check the interpreter, hand the user's umask back, then call the
recipe's entry point {entry!r} as a console script would."""

import os
import sys
from importlib import import_module

NEEDS = {needs!r}  # the CPython the artifact's wheels were chosen for
OR_NEWER = {or_newer!r}  # every wheel also runs on later CPythons (pure Python, abi3)
{seccomp}

def main():
    found = sys.version_info[:2]
    if found < NEEDS or (found != NEEDS and not OR_NEWER):
        want = "%d.%d" % NEEDS + (" or newer" if OR_NEWER else "")
        sys.stderr.write(
            "%s: needs Python %s (python%d.%d on PATH); it was started by Python %d.%d (%s)\\n"
            % (os.path.basename(os.environ.get("PEX") or sys.argv[0]), want, *NEEDS, *found,
               sys.executable)
        )
        sys.exit(2)
{seccomp_call}    mask = os.environ.pop("BUILDKIT_UMASK", "")
    if mask:
        try:
            os.umask(int(mask, 8))
        except ValueError:
            pass
    target = import_module({module!r})
    for name in {attrs!r}:
        target = getattr(target, name)
    sys.exit(target())
'''

#: Shell functions shared by both headers. ``ls -ldn`` is POSIX and reads the same on
#: Linux (coreutils, BusyBox) and macOS: mode, links, uid.
_CHECKS = """\
_bk_refuse() {
  echo "$_bk_name: $1" >&2
  exit 126
}
_bk_private() {
  _bk_bad=$(find "$@" -prune \\( -type l -o ! -user "$_bk_uid" -o -perm -020 -o -perm -002 \\) \\
    -print 2>/dev/null) || true
  [ -z "$_bk_bad" ] && return 0
  _bk_bad=${_bk_bad%%
*}
  if [ -L "$_bk_bad" ]; then
    _bk_refuse "$_bk_bad is a symbolic link; remove it (a link may lead to another user's files)"
  fi
  set -- $(ls -ldn "$_bk_bad")
  if [ "$3" != "$_bk_uid" ]; then
    _bk_refuse "$_bk_bad belongs to another user (uid $3); remove it or choose another folder"
  fi
  _bk_refuse "$_bk_bad can be written by others ($1); check what is inside, then run: \\
chmod -R go-w '$_bk_bad' (or remove it)"
}
for _bk_tool in id find ls; do
  command -v "$_bk_tool" >/dev/null 2>&1 \\
    || _bk_refuse "cannot check its extraction folders: '$_bk_tool' is not on PATH"
done
_bk_uid=$(id -u)
"""


#: Where a shiv zipapp extracts when ``$HOME`` cannot be written (a service account): a
#: folder under ``$XDG_RUNTIME_DIR`` (the user's own, 0700), else the first of
#: ``$TMPDIR/shiv-<uid>``, ``…-1``, ``…-2`` that is this user's alone. Anyone can make
#: those names first in a shared ``/tmp``, and the owner cannot remove them there (the
#: sticky bit), so one planted folder must not stop the program for good: when all are
#: another's, a fresh ``mktemp -d`` folder is used for this start, with one line saying
#: so and how to choose a folder (``SHIV_ROOT``).
_FALLBACK = """  _bk_root=
  _bk_ours() {
    [ -d "$1" ] || return 1
    _bk_out=$(find "$1" -prune \\( -type l -o ! -user "$_bk_uid" -o -perm -020 -o -perm -002 \\) \\
      -print 2>/dev/null) && [ -z "$_bk_out" ]
  }
  if [ -n "${XDG_RUNTIME_DIR:-}" ] && _bk_ours "$XDG_RUNTIME_DIR"; then
    mkdir "$XDG_RUNTIME_DIR/shiv" 2>/dev/null || true
    _bk_ours "$XDG_RUNTIME_DIR/shiv" && _bk_root=$XDG_RUNTIME_DIR/shiv
  fi
  for _bk_try in '' -1 -2; do
    [ -n "$_bk_root" ] && break
    _bk_try=${TMPDIR:-/tmp}/shiv-$_bk_uid$_bk_try
    mkdir "$_bk_try" 2>/dev/null || true
    _bk_ours "$_bk_try" && _bk_root=$_bk_try
  done
  if [ -z "$_bk_root" ]; then
    _bk_root=$(mktemp -d "${TMPDIR:-/tmp}/shiv-$_bk_uid.XXXXXXXX" 2>/dev/null) \\
      || _bk_refuse "\\$HOME cannot be written and ${TMPDIR:-/tmp}/shiv-$_bk_uid belongs to \\
another user; set SHIV_ROOT to a folder only you can write (or TMPDIR to another folder)"
    echo "$_bk_name: \\$HOME cannot be written and ${TMPDIR:-/tmp}/shiv-$_bk_uid is not yours \\
alone: extracting into $_bk_root for this start; set SHIV_ROOT to a folder only you can \\
write to extract once" >&2
  fi
"""


def boot_module(
    entry: str, python: str, *, or_newer: bool, seccomp: tuple[str, str] | None = None
) -> str:
    """The boot module of a zipapp for CPython ``python`` (X.Y); ``or_newer``: it may
    run on later versions too (every wheel in it does); ``seccomp``: (architecture,
    program filter as ``ProgramFilter.encode()`` gives it) to install before the entry
    point is imported (empty: only mark where the program starts, see
    :mod:`.zipapp_seccomp`)."""
    from . import zipapp_seccomp

    module, _, attrs = entry.partition(":")
    needs = tuple(int(x) for x in python.split("."))
    return _BOOT.format(
        entry=entry,
        module=module,
        attrs=tuple(attrs.split(".")),
        needs=needs,
        or_newer=or_newer,
        seccomp=zipapp_seccomp.boot_block(*seccomp) if seccomp else "",
        seccomp_call="    _seccomp()\n" if seccomp else "",
    )


def seccomp_of(
    job_settings: Mapping[str, str], arch: str, filter_hex: str
) -> tuple[str, str] | None:
    """What a zipapp's boot module installs: nothing unless the build asks for a boot
    filter (``settings["seccomp"] == "boot"``)."""
    return (arch, filter_hex) if job_settings.get("seccomp") == "boot" else None


def shiv_header(name: str, python: str, build_id: str) -> str:
    """The ``sh`` header of a shiv zipapp named ``name``, built for CPython ``python``."""
    return (
        "#!/bin/sh\n"
        f"# {name}: started by buildkit's launcher (python{python} -I, private extraction "
        "folders); see its README, Guarantees\n"
        f"_bk_name='{name}'\n" + _CHECKS + "_bk_umask=$(umask)\n"
        "umask 077\n"
        'if [ -n "${SHIV_ROOT:-}" ]; then\n'
        "  _bk_root=$SHIV_ROOT\n"
        'elif [ -n "${HOME:-}" ] && { [ -d "$HOME/.shiv" ] || mkdir -p "$HOME/.shiv" \\\n'
        '    2>/dev/null; } && [ -w "$HOME/.shiv" ]; then\n'
        "  _bk_root=$HOME/.shiv\n"
        "else\n" + _FALLBACK + "fi\n"
        f'_bk_private "$_bk_root" "$_bk_root"/*_{build_id} "$_bk_root"/*_{build_id}/site-packages\n'
        'export SHIV_ROOT="$_bk_root" BUILDKIT_UMASK="$_bk_umask"\n'
        f"if command -v python{python} >/dev/null 2>&1; then\n"
        f'  exec python{python} -I "$0" "$@"\n'
        "fi\n" + _needs(python)
    )


def _needs(python: str) -> str:
    """Shell lines that say, in one line, which Python the app needs and what the host
    has, and exit 2."""
    return (
        "_bk_has='no python3'\n"
        "command -v python3 >/dev/null 2>&1 && _bk_has=$(python3 --version 2>&1)\n"
        f'echo "$_bk_name: needs Python {python} (python{python} on PATH); this host has: '
        '$_bk_has" >&2\n'
        "exit 2\n"
    )


_PEX_ANCHOR = 'INSTALLED_PEX="${PEX_ROOT}/venvs/'

_PEX_CHECKS = (
    "_bk_umask=$(umask)\n"
    "umask 077\n"
    'export BUILDKIT_UMASK="$_bk_umask"\n'
    "_bk_pex_folders() {\n"
    '  set -- "$PEX_ROOT" "$PEX_ROOT/venvs"\n'
    "  _bk_dir=$INSTALLED_PEX\n"
    '  while [ "$_bk_dir" != "$PEX_ROOT/venvs" ] \\\n'
    '      && [ "${_bk_dir#"$PEX_ROOT"/venvs/}" != "$_bk_dir" ]; do\n'
    '    set -- "$@" "$_bk_dir"\n'
    "    _bk_dir=${_bk_dir%/*}\n"
    "  done\n"
    '  _bk_private "$@"\n'
    "}\n"
    "_bk_pex_folders\n"
)


def pex_header(original: str, name: str, python: str, *, or_newer: bool) -> str:
    """pex's own ``--sh-boot`` header with buildkit's checks added after the line that
    names the installed venv (so they run before pex either uses or builds it). A pex
    tied to one CPython (``or_newer`` false) that finds no ``python{python}`` and is not
    installed yet says so in one line, where pex's boot would try another interpreter."""
    at = original.find(_PEX_ANCHOR)
    end = original.find("\n", at)
    if at < 0 or end < 0:
        raise ValueError("pex's boot header has no INSTALLED_PEX line (pex changed?)")
    block = f"_bk_name='{name}'\n" + _CHECKS + _PEX_CHECKS
    if not or_newer:
        block += (
            f'if [ -z "${{PEX_PYTHON:-}}" ] && ! command -v python{python} >/dev/null 2>&1 \\\n'
            '    && [ ! -x "${INSTALLED_PEX}/bin/python" ]; then\n'
            + "  "
            + _needs(python).replace("\n", "\n  ").rstrip(" ")
            + "fi\n"
        )
    return original[: end + 1] + block + original[end + 1 :]


def zip_prefix(path: Path) -> bytes:
    """The bytes before the first zip member (a zipapp's shebang or boot script)."""
    with zipfile.ZipFile(path) as zf:
        start = min(i.header_offset for i in zf.infolist())
    with path.open("rb") as f:
        return f.read(start)


def replace_prefix(path: Path, prefix: bytes) -> None:
    """Put ``prefix`` in front of the zip data of ``path`` instead of what was there.
    Zip readers (zipimport, zipfile, unzip) find members from the end of the archive,
    so the members need no rewriting."""
    old = zip_prefix(path)
    data = path.read_bytes()
    atomic_write_bytes(path, prefix + data[len(old) :], mode=0o755)
