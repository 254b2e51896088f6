import json

import pytest
from logscan import count
from logwatch.cli import main

LOG = b"".join(
    [b"INFO start\n", b"ERROR disk full\n", b"WARN slow\n", b"ERROR disk full\n", b"INFO ok"]
)


def test_count_in_c():
    got = count(LOG, ["ERROR", "WARN", "nothing"])
    assert (got.lines, got.matching) == (5, 3)
    assert got.per_pattern == {"ERROR": 2, "WARN": 1, "nothing": 0}
    assert count(b"", ["x"]).lines == 0


def test_too_many_patterns_is_an_error():
    with pytest.raises(ValueError, match="at most 16 patterns"):
        count(LOG, [str(i) for i in range(17)])


def test_alert_at_threshold(tmp_path, capsys):
    log = tmp_path / "app.log"
    log.write_bytes(LOG)
    assert main([str(log), "--pattern", "ERROR", "--threshold", "2", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["alert"] and doc["matching"] == 2
    assert main([str(log), "--pattern", "ERROR", "--threshold", "3"]) == 0
    assert capsys.readouterr().out.startswith("ok  2 of 5 lines match")


def test_tail_drops_the_partial_first_line(tmp_path, capsys):
    log = tmp_path / "app.log"
    log.write_bytes(LOG)
    assert main([str(log), "--pattern", "ERROR", "--tail", "20", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["lines"] == 1  # "ERROR disk full\nINFO ok" cut to the last whole lines


def test_follow_counts_only_new_lines(tmp_path, capsys):
    log = tmp_path / "app.log"
    log.write_bytes(LOG)
    assert main([str(log), "--pattern", "ERROR", "--follow", "0.2"]) == 0
    assert capsys.readouterr().out.startswith("ok  0 of 0 lines")


def test_missing_file_is_exit_2(tmp_path, capsys):
    assert main([str(tmp_path / "nope.log"), "--pattern", "x"]) == 2
    assert "nope.log" in capsys.readouterr().err
