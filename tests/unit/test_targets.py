from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.tags import Tag

from buildkit import targets
from buildkit.errors import InputError

ROOT = Path(__file__).resolve().parents[2]


def test_four_targets_from_data() -> None:
    assert set(targets.all_targets()) == {
        "linux-amd64",
        "darwin-arm64",
        "alpine-arm64",
        "linux-arm64",
    }


@pytest.mark.parametrize(
    ("name", "python", "accepts", "rejects"),
    [
        (
            "linux-amd64",
            "3.11",
            "cp311-cp311-manylinux_2_17_x86_64",
            "cp311-cp311-manylinux_2_17_aarch64",
        ),
        (
            "linux-amd64",
            "3.11",
            "cp36-abi3-manylinux2010_x86_64",
            "cp311-cp311-musllinux_1_2_x86_64",
        ),
        ("darwin-arm64", "3.11", "cp311-cp311-macosx_11_0_arm64", "cp311-cp311-macosx_11_0_x86_64"),
        (
            "darwin-arm64",
            "3.11",
            "cp311-cp311-macosx_10_9_universal2",
            "cp311-cp311-macosx_14_0_arm64",
        ),
        (
            "alpine-arm64",
            "3.12",
            "cp312-cp312-musllinux_1_2_aarch64",
            "cp312-cp312-manylinux_2_17_aarch64",
        ),
        ("alpine-arm64", "3.12", "py3-none-any", "cp311-cp311-musllinux_1_2_aarch64"),
        (
            "linux-arm64",
            "3.11",
            "cp311-cp311-manylinux_2_28_aarch64",
            "cp311-cp311-manylinux_2_34_aarch64",
        ),
    ],
)
def test_wheel_tags(name: str, python: str, accepts: str, rejects: str) -> None:
    tags = set(targets.get(name).wheel_tags(python))
    assert Tag(*accepts.split("-")) in tags
    assert Tag(*rejects.split("-")) not in tags


def test_tags_best_first() -> None:
    tags = targets.get("linux-amd64").wheel_tags("3.11")
    assert str(tags[0]) == "cp311-cp311-manylinux_2_28_x86_64"
    assert str(tags[-1]) == "py30-none-any"


def test_complete_platform_shape() -> None:
    doc = targets.get("alpine-arm64").complete_platform("3.12")
    env = doc["marker_environment"]
    assert env["python_version"] == "3.12"
    assert env["platform_machine"] == "aarch64"
    assert env["sys_platform"] == "linux"
    assert "cp312-cp312-musllinux_1_2_aarch64" in doc["compatible_tags"]


def test_unknown_target_did_you_mean() -> None:
    with pytest.raises(InputError, match="did you mean 'alpine-arm64'"):
        targets.get("alpine-aarm64")


def test_host_target_here() -> None:
    host = targets.host_target()
    triple = targets.host_triple()
    if triple == ("linux", "x86_64", "glibc"):
        assert host is not None and host.name == "linux-amd64"
    for t in targets.all_targets().values():
        assert t.is_host() == ((t.os, t.arch, t.libc) == triple)


def test_no_target_name_in_code() -> None:
    names = "|".join(map(re.escape, targets.all_targets()))
    offenders = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in (ROOT / "buildkit").rglob("*.py")
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if re.search(rf"[\"']({names})[\"']", line)
    ]
    assert offenders == []
