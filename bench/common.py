"""What the benchmark scripts share: the real interpreter and a local TCP listener."""

from __future__ import annotations

import socket
import sys
import sysconfig
import threading
from pathlib import Path


def real_python() -> Path:
    """The interpreter itself (not a pyenv shim or venv wrapper) for python3.X: the
    system's when it has one (as on an ops host; a pyenv interpreter's site-packages may
    hold .pth files that work at every start), else the one this runs under."""
    name = f"python{sysconfig.get_config_var('VERSION')}"
    system = Path("/usr/bin") / name
    return system if system.is_file() else Path(sys.base_prefix) / "bin" / name


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
