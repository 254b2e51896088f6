import json
import socket

import pytest
from portcheck.cli import main, parse_target


@pytest.fixture
def listening():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


@pytest.fixture
def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return port  # bound then released: nothing listens


def test_open_port_exit_0(listening, capsys):
    assert main([f"127.0.0.1:{listening}"]) == 0
    assert capsys.readouterr().out.startswith("open")


def test_closed_port_exit_1(listening, closed_port, capsys):
    assert main([f"127.0.0.1:{listening}", f"127.0.0.1:{closed_port}", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert [r["open"] for r in doc] == [True, False]
    assert "refused" in doc[1]["error"]


def test_bad_target_is_usage_error():
    with pytest.raises(SystemExit) as exc:
        main(["nohostport"])
    assert exc.value.code == 2


def test_parse_target_ipv6():
    assert parse_target("[::1]:22") == ("::1", 22)
