"""What a check's run stands on: a working folder with its files, and servers on
127.0.0.1 that answer without any network.

``serve = "tcp"``: a listener that accepts each connection and closes it.
``serve = "http"``: an HTTP/1.1 server; ``GET /status/NNN`` answers NNN, any other path
200 with the body ``ok``. ``{closed_port}``: a port that was free a moment ago (bound,
then closed), so a probe of it is refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import socket
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ..errors import IntegrityError
from ..fsutil import read_regular
from .model import MAX_COPY, PLACEHOLDERS, Check

_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")


def expand(arg: str, values: Mapping[str, str]) -> str:
    """``arg`` with the placeholders it uses replaced (other braces are left alone)."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), arg)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self, body: bool) -> None:
        match = re.fullmatch(r"/status/([1-5][0-9][0-9])", self.path.split("?")[0])
        status = int(match.group(1)) if match else 200
        text = b"ok\n" if status == 200 else f"status {status}\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        if body:
            self.wfile.write(text)

    def do_GET(self) -> None:
        self._answer(body=True)

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def log_message(self, format: str, *args: object) -> None:
        return


@contextlib.contextmanager
def _tcp() -> Iterator[int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.settimeout(0.05)  # a closed socket does not wake accept(): look at `stop` often
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.close()

    thread = threading.Thread(target=accept, name="check-tcp", daemon=True)
    thread.start()
    try:
        yield int(sock.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=5)
        sock.close()


@contextlib.contextmanager
def _http() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="check-http", daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_files(check: Check, folder: Path) -> None:
    """The check's files, created fresh in ``folder`` (its working folder), and the
    recipe folder's files it copies, refused if their bytes changed since the recipe
    was read."""
    for name, text in check.files:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for name, source, sha256 in check.copy:
        data = read_regular(Path(source), MAX_COPY)
        if hashlib.sha256(data).hexdigest() != sha256:
            raise IntegrityError(
                f"check {check.name!r}: {source} changed since the recipe was read",
                hint="build again; nothing was published",
            )
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


@contextlib.contextmanager
def serving(check: Check, inside_dir: str) -> Iterator[dict[str, str]]:
    """The placeholder values of one run of ``check``, its server up meanwhile."""
    values = {"dir": inside_dir, "closed_port": str(closed_port())}
    with contextlib.ExitStack() as stack:
        if check.serve == "tcp":
            values["port"] = str(stack.enter_context(_tcp()))
        elif check.serve == "http":
            port = stack.enter_context(_http())
            values["port"] = str(port)
            values["url"] = f"http://127.0.0.1:{port}"
        yield values
