"""The cibuildwheel configuration buildkit writes for a recipe's native packages selects
exactly the build identifiers the recipe's targets need (cibuildwheel runs here without
Docker when it only prints them)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import RECIPES
from tests.integration.conftest import buildkit

pytestmark = pytest.mark.integration

WANT = {
    "linux": ["cp311-manylinux_x86_64", "cp311-manylinux_aarch64", "cp312-musllinux_aarch64"],
    "macos": ["cp311-macosx_arm64"],
}


@pytest.mark.parametrize("platform", sorted(WANT))
def test_identifiers_are_exactly_the_targets(platform: str, tmp_path: Path) -> None:
    config = tmp_path / "cibuildwheel.toml"
    buildkit("cibuildwheel-config", RECIPES / "logwatch", "--out", config)
    package = tmp_path / "logscan"
    subprocess.run(["cp", "-r", RECIPES / "logwatch" / "native" / "logscan", package], check=True)
    proc = subprocess.run(
        [Path(sys.executable).with_name("cibuildwheel"), "--print-build-identifiers",
         "--platform", platform, "--config-file", config, package],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert sorted(proc.stdout.split()) == sorted(WANT[platform])
    text = config.read_text()
    assert '"-Wl,-z,relro,-z,now' in text and "-fstack-protector-strong" in text
    assert "-pie" not in text  # extension modules are shared objects
