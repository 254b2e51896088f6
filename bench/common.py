"""What the benchmark scripts share: the real interpreter and a local TCP listener."""

from __future__ import annotations

import socket
import sys
import sysconfig
import threading
from pathlib import Path


def real_python() -> Path:
    """The interpreter itself (not a pyenv shim or venv wrapper) for python3.X."""
    return Path(sys.base_prefix) / "bin" / f"python{sysconfig.get_config_var('VERSION')}"


def tcp_listener() -> tuple[socket.socket, int]:
    """A listening port for portcheck; accepted connections are closed at once."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)

    def drain() -> None:
        while True:
            try:
                listener.accept()[0].close()
            except OSError:
                return

    threading.Thread(target=drain, daemon=True).start()
    return listener, listener.getsockname()[1]
