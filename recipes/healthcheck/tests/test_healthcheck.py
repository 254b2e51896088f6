import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from healthcheck.cli import main


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so the pool can reuse connections
    connections: ClassVar[set[int]] = set()

    def do_GET(self):
        Handler.connections.add(id(self.connection))
        status = 200 if self.path.startswith("/ok") else 503
        body = b"status: ok\n" if status == 200 else b"down\n"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    Handler.connections = set()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_healthy(server, capsys):
    assert main([f"{server}/ok", "--contains", "ok"]) == 0
    assert capsys.readouterr().out.startswith("healthy")


def test_unhealthy_status_exit_1(server, capsys):
    assert main([f"{server}/ok", f"{server}/down", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert [(r["healthy"], r["status"]) for r in doc] == [(True, 200), (False, 503)]


def test_connection_is_reused(server):
    assert main([f"{server}/ok/1", f"{server}/ok/2", f"{server}/ok/3"]) == 0
    assert len(Handler.connections) == 1


def test_refused_connection_is_unhealthy(capsys):
    assert main(["http://127.0.0.1:9/", "--retries", "0", "--timeout", "2"]) == 1
    assert "UNHEALTHY" in capsys.readouterr().out


def test_not_a_url_is_usage_error():
    with pytest.raises(SystemExit) as exc:
        main(["ftp://example"])
    assert exc.value.code == 2
