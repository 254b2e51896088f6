import json

import pytest
from hostmetrics.cli import main, over


def test_report_json(capsys):
    assert main(["--json", "--interval", "0"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert 0 <= doc["memory_percent"] <= 100
    assert doc["disks"][0]["path"] == "/"
    assert doc["cpu_count"] >= 1


def test_threshold_exceeded_exit_1(capsys):
    assert main(["--max-disk", "0", "--interval", "0"]) == 1
    assert "OVER    disk /" in capsys.readouterr().out


def test_missing_disk_is_usage_error():
    with pytest.raises(SystemExit) as exc:
        main(["--disk", "/no/such/mount", "--interval", "0"])
    assert exc.value.code == 2


def test_over_lists_each_problem():
    report = {"cpu_percent": 95.0, "memory_percent": 10.0, "disks": [{"path": "/", "percent": 91}]}
    assert over(report, 90, 90, 90) == ["cpu 95.0% > 90%", "disk / 91% > 90%"]
