"""The recipe's ``[[checks]]``: commands run against every built artifact before release.

A check runs the artifact with its ``args`` and compares the exit code and output with
what it expects. Fixtures make the run real without the network: ``serve`` starts a TCP
listener or an HTTP server on 127.0.0.1 (``{port}``, ``{url}``), ``{closed_port}`` is a
port nothing listens on, ``files`` are created in the check's working folder (``{dir}``)
and ``copy`` copies files of the recipe folder there (a real wheel, archive or
certificate: any bytes, hashed when the recipe is read and checked again when copied),
and ``env`` and ``stdin`` are given to the program. ``targets`` limits a check to the
artifacts of some targets (a behaviour that differs on one platform gets a check of its
own there). A recipe without ``[[checks]]`` gets one: ``--help`` must exit 0.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from ..errors import did_you_mean
from ..fsutil import sha256_file

if TYPE_CHECKING:
    from ..recipe import Checker

KEYS = (
    "name",
    "args",
    "exit",
    "stdout",
    "stdout_regex",
    "stderr",
    "stderr_regex",
    "env",
    "stdin",
    "files",
    "copy",
    "serve",
    "timeout",
    "targets",
)
SERVE = ("tcp", "http")
PLACEHOLDERS = ("port", "closed_port", "url", "dir")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_CHECKS = 64
MAX_FIXTURE = 1 << 20  # bytes of files and stdin per check
MAX_COPY = 64 << 20  # bytes of the recipe folder's files one check copies
MAX_TIMEOUT = 3600
DEFAULT_TIMEOUT = 60.0


@dataclass(frozen=True, kw_only=True)
class Check:
    name: str
    args: tuple[str, ...]
    exit: int = 0
    stdout: str = ""
    stdout_regex: str = ""
    stderr: str = ""
    stderr_regex: str = ""
    env: tuple[tuple[str, str], ...] = ()
    stdin: str = ""
    files: tuple[tuple[str, str], ...] = ()
    # (name in the check's folder, the recipe folder's file, its sha256 when read)
    copy: tuple[tuple[str, str, str], ...] = ()
    serve: str = ""  # "", "tcp" or "http"
    timeout: float = DEFAULT_TIMEOUT
    targets: tuple[str, ...] = ()  # the targets whose artifacts it runs against; () = all

    def applies_to(self, target: str) -> bool:
        return not self.targets or target in self.targets

    def expected(self) -> str:
        """What the check expects, in words (for failures and reports)."""
        parts = [f"exit {self.exit}"]
        for stream in ("stdout", "stderr"):
            if text := getattr(self, stream):
                parts.append(f"{stream} containing {text!r}")
            if pattern := getattr(self, f"{stream}_regex"):
                parts.append(f"{stream} matching /{pattern}/")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "args": list(self.args),
            "expected": self.expected(),
            **({"targets": list(self.targets)} if self.targets else {}),
        }


#: What a recipe without ``[[checks]]`` is held to: the entry starts and answers --help.
DEFAULT = (Check(name="--help", args=("--help",)),)


def parse(c: Checker, value: Any) -> tuple[Check, ...]:
    """The ``[[checks]]`` array of a recipe (already known to be present)."""
    if not isinstance(value, list):
        raise c.fail(
            "[checks]",
            "must be an array of tables ([[checks]]), not a single table or value",
            hint='write each check as [[checks]] with args = ["--version"] and what it expects',
        )
    if not value:
        raise c.fail(
            "[checks]",
            "is empty: every artifact must be proven to run",
            hint="remove it to get the default check (--help exits 0), or list real checks",
        )
    if len(value) > MAX_CHECKS:
        raise c.fail("[checks]", f"lists {len(value)} checks; at most {MAX_CHECKS}")
    checks = [_one(c, item, i) for i, item in enumerate(value)]
    names = [check.name for check in checks]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise c.fail(
                f"[checks][{i}].name", f"{name!r} names two checks", hint="give each its own name"
            )
    return tuple(checks)


def _one(c: Checker, item: Any, i: int) -> Check:
    where = f"[checks][{i}]."
    table = c.table(item, where.rstrip("."))
    c.known(table, KEYS, where)
    args = c.strings(table, "args", where)
    serve = c.string(table, "serve", where, required=False)
    if serve and serve not in SERVE:
        raise c.fail(
            f"{where}serve",
            f"{serve!r} is not a fixture{did_you_mean(serve, SERVE)}",
            hint='"tcp": a listener that accepts connections; "http": a server answering '
            "200 'ok' (and /status/NNN with NNN)",
        )
    for arg in args:
        for found in _PLACEHOLDER.findall(arg):
            if found not in PLACEHOLDERS:
                raise c.fail(
                    f"{where}args",
                    f"{{{found}}} is not a placeholder{did_you_mean(found, PLACEHOLDERS)}",
                    hint="placeholders: " + ", ".join(f"{{{p}}}" for p in PLACEHOLDERS),
                )
            if found in ("port", "url") and not serve:
                raise c.fail(
                    f"{where}args",
                    f'{{{found}}} needs a server: set serve = "tcp" or "http"',
                )
            if found == "url" and serve != "http":
                raise c.fail(f"{where}args", '{url} needs serve = "http"')
    code = table.get("exit", 0)
    if not isinstance(code, int) or isinstance(code, bool) or not 0 <= code <= 255:
        raise c.fail(f"{where}exit", f"must be an exit code from 0 to 255, not {code!r}")
    texts = {k: c.string(table, k, where, required=False) for k in ("stdout", "stderr")}
    regexes = {}
    for key in ("stdout_regex", "stderr_regex"):
        pattern = c.string(table, key, where, required=False)
        try:
            re.compile(pattern)
        except re.error as exc:
            raise c.fail(
                f"{where}{key}", f"{pattern!r} is not a regular expression: {exc}"
            ) from None
        regexes[key] = pattern
    env = _mapping(c, table, "env", where)
    for key, _ in env:
        if not _ENV_NAME.fullmatch(key):
            raise c.fail(f"{where}env", f"{key!r} is not an environment variable name")
    files = _mapping(c, table, "files", where)
    copies = _mapping(c, table, "copy", where)
    for key, pairs in (("files", files), ("copy", copies)):
        for name, _ in pairs:
            if not _relative(name):
                raise c.fail(
                    f"{where}{key}",
                    f"{name!r} is not a relative path inside the check's folder",
                    hint='name files like "app.log" or "conf/app.ini"',
                )
    if both := sorted({n for n, _ in files} & {n for n, _ in copies}):
        raise c.fail(f"{where}copy", f"{both[0]!r} is also in files: one file, one source")
    copy = _copied(c, copies, where)
    stdin = c.string(table, "stdin", where, required=False)
    size = len(stdin.encode()) + sum(len(text.encode()) for _, text in files)
    if size > MAX_FIXTURE:
        raise c.fail(f"{where}files", f"fixtures of {size} bytes; at most {MAX_FIXTURE} per check")
    timeout = table.get("timeout", DEFAULT_TIMEOUT)
    if (
        not isinstance(timeout, (int, float))
        or isinstance(timeout, bool)
        or not 0 < timeout <= MAX_TIMEOUT
    ):
        raise c.fail(f"{where}timeout", f"must be seconds from 1 to {MAX_TIMEOUT}, not {timeout!r}")
    only = _targets(c, table, where)
    name = c.string(table, "name", where, required=False) or " ".join(args) or "(no arguments)"
    return Check(
        name=name,
        args=tuple(args),
        exit=code,
        stdout=texts["stdout"],
        stdout_regex=regexes["stdout_regex"],
        stderr=texts["stderr"],
        stderr_regex=regexes["stderr_regex"],
        env=env,
        stdin=stdin,
        files=files,
        copy=copy,
        serve=serve,
        timeout=float(timeout),
        targets=only,
    )


def _targets(c: Checker, table: Mapping[str, Any], where: str) -> tuple[str, ...]:
    from .. import targets

    if "targets" not in table:
        return ()
    names = c.strings(table, "targets", where)
    if not names:
        raise c.fail(
            f"{where}targets",
            "lists no target: the check would never run",
            hint="remove the key to run it against every artifact",
        )
    known = targets.all_targets()
    for name in names:
        if name not in known:
            raise c.fail(
                f"{where}targets",
                f"{name!r} is not a target{targets.suggest(name, known)}",
                hint="targets: " + ", ".join(known),
            )
    return tuple(dict.fromkeys(names))


def _mapping(
    c: Checker, table: Mapping[str, Any], key: str, where: str
) -> tuple[tuple[str, str], ...]:
    value = table.get(key, {})
    mapping = c.table(value, f"{where}{key}")
    for k, v in mapping.items():
        if not isinstance(v, str):
            raise c.fail(f"{where}{key}", f"{k!r} must be a string, not {type(v).__name__}")
    return tuple(sorted(mapping.items()))


def _relative(name: str) -> bool:
    path = PurePosixPath(name)
    return bool(name) and not path.is_absolute() and ".." not in path.parts and "\\" not in name


def _copied(
    c: Checker, copies: tuple[tuple[str, str], ...], where: str
) -> tuple[tuple[str, str, str], ...]:
    """The recipe folder's files a check copies: each a regular file inside the folder
    (no link), bounded in size, with its sha256 as read now."""
    root = c.path.parent.resolve()
    found, total = [], 0
    for name, source in copies:
        path = root / source
        problem = None
        if not _relative(source):
            problem = "is not a relative path inside the recipe folder"
        elif not path.resolve().is_relative_to(root) or any(
            p.is_symlink() for p in [path, *path.parents] if p.is_relative_to(root) and p != root
        ):
            problem = "leads outside the recipe folder (a link)"
        elif not path.is_file():
            problem = "is not a file of the recipe folder"
        else:
            total += path.stat().st_size
            if total > MAX_COPY:
                problem = f"brings the check's copies over {MAX_COPY >> 20} MiB"
        if problem:
            raise c.fail(
                f"{where}copy",
                f"{name!r} = {source!r}: {problem}",
                hint='name a file beside recipe.toml, e.g. copy = { "pkg.whl" = '
                '"fixtures/pkg.whl" }',
            )
        found.append((name, str(path), sha256_file(path)))
    return tuple(found)
