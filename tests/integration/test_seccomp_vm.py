"""seccomp = "enforce" on arm64, proven on an aarch64 kernel: portcheck's linux-arm64
binary, built on the emulated Debian builder with its filter armed, boots in a small
qemu-system-aarch64 VM (tests/vm) with Debian's arm64 kernel and passes its checks there
under the filter it installs itself; a call the checks never made fails with EPERM; the
same bytes with the slot marked empty make that call. (QEMU's user mode, where the
emulated hosts run, has no seccomp: there the binary can only refuse to start.)"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from buildkit.cache import Cache
from buildkit.seccomp import slot
from tests import vm
from tests.integration.conftest import buildkit
from tests.integration.test_seccomp_enforce import _variant

pytestmark = [pytest.mark.integration, pytest.mark.emulated]

HOST_CACHE = Path(
    os.environ.get("BUILDKIT_TEST_HOST_CACHE") or Path.home() / ".cache" / "buildkit-test-hosts"
)
NAME = "portcheck-1.0.0-linux-arm64"


@pytest.fixture(scope="module")
def root() -> Path:
    if os.geteuid() != 0:
        pytest.skip("the emulated builder needs root")
    if (why := vm.available()) is not None:
        pytest.skip(why)
    proc = buildkit("host", "create", "linux-arm64", "--cache-dir", HOST_CACHE, "--json")
    return Path(json.loads(proc.stdout)["root"])


def test_the_arm64_binary_enforces_its_filter_on_an_aarch64_kernel(
    root: Path, recipe_copy: Any, tmp_path: Path
) -> None:
    recipe = _variant(recipe_copy, "enforce")
    out = tmp_path / "dist"
    done = buildkit(
        "build", recipe, "--target", "linux-arm64", "--format", "nuitka",
        "--builder", "linux-arm64", "--out", out, "--cache-dir", HOST_CACHE, "--json",
        cwd=recipe.parents[1],
    )  # fmt: skip
    assert "seccomp filters written" in done.stderr, done.stderr
    armed = out / NAME
    # the audit on this machine reads the aarch64 filter out of the binary
    report = json.loads((out / "portcheck-1.0.0.hardening.json").read_text())
    top = next(f for f in report["files"] if f["path"] == NAME)
    assert top["checks"]["seccomp"]["state"] == "pass", top["checks"]["seccomp"]
    assert "calls allowed on aarch64" in top["checks"]["seccomp"]["evidence"]
    assert "socket() only for AF_INET" in top["checks"]["seccomp"]["evidence"]
    assert "starts no program, threads only" in top["checks"]["seccomp"]["evidence"]
    plain = tmp_path / "unfiltered"
    slot.disarm(armed, plain)

    files = vm.glibc_files(root)
    files["init"] = vm.init_program(tmp_path)
    files["bin/portcheck"] = armed
    files["bin/unfiltered"] = plain
    commands = [
        # the recipe's three checks, under the filter
        ["/bin/portcheck", "127.0.0.1:{port}", "--timeout", "5"],
        ["/bin/portcheck", "127.0.0.1:{closed_port}", "--timeout", "5"],
        ["/bin/portcheck", "127.0.0.1:{port}", "--json"],
        # a call the checks never made, and a socket family they never asked for
        ["PORTCHECK_SETSID=1", "/bin/portcheck", "127.0.0.1:{closed_port}"],
        ["PORTCHECK_PACKET=1", "/bin/portcheck", "127.0.0.1:{closed_port}"],
        # a fork and an exec: the bootstrap made both, the program's own filter denies them
        ["PORTCHECK_FORK=1", "/bin/portcheck", "127.0.0.1:{closed_port}"],
        ["PORTCHECK_EXEC=1", "/bin/portcheck", "127.0.0.1:{closed_port}"],
        # the same bytes, slot marked empty: no filter, the call is made
        ["PORTCHECK_SETSID=1", "/bin/unfiltered", "127.0.0.1:{closed_port}"],
        ["PORTCHECK_FORK=1", "/bin/unfiltered", "127.0.0.1:{closed_port}"],
    ]
    image = vm.initramfs(tmp_path, files, commands)
    ran, log = vm.boot(vm.kernel(Cache(root=HOST_CACHE), tmp_path), image, commands)
    assert len(ran) == len(commands), log[-4000:]
    open_, closed, as_json, refused, packet, forked, execd, unfiltered, unforked = ran
    assert open_.code == 0 and open_.output.startswith("open "), log[-4000:]
    assert closed.code == 1 and "closed" in closed.output, closed
    assert as_json.code == 0 and json.loads(as_json.output)[0]["open"] is True, as_json
    assert refused.code == 3, refused
    assert "setsid refused: [Errno 1] Operation not permitted" in refused.output
    assert packet.code == 4, packet
    assert "packet socket refused: [Errno 1] Operation not permitted" in packet.output
    assert forked.code == 5, forked
    assert "fork refused: [Errno 1] Operation not permitted" in forked.output
    assert execd.code == 6, execd
    assert "exec refused: [Errno 1] Operation not permitted" in execd.output
    assert unfiltered.code == 1 and "setsid allowed" in unfiltered.output, unfiltered
    assert unforked.code == 1 and "fork allowed" in unforked.output, unforked
