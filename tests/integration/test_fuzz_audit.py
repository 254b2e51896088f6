"""Property-based fuzzing of the audit over real artifacts: mutated Mach-O slices (from
psutil's macOS arm64 wheel) and mutated zipapps (a real .pyz holding psutil's Linux
extension). Every mutant gives reports (a finding when unreadable), never an exception."""

from __future__ import annotations

import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from buildkit.audit import macho
from buildkit.audit.findings import State
from buildkit.audit.run import audit_paths
from tests.conftest import RECIPES
from tests.integration.conftest import buildkit
from tests.unit.test_audit_hostile import mutate

pytestmark = [pytest.mark.integration, pytest.mark.faults]

SEEDS: dict[str, bytes] = {}


@pytest.fixture(scope="module", autouse=True)
def seeds(tmp_path_factory: pytest.TempPathFactory) -> None:
    base = tmp_path_factory.mktemp("seeds")
    buildkit("build", RECIPES / "hostmetrics", "--target", "darwin-arm64", "--target",
             "linux-amd64", "--format", "shiv", "--out", base / "dist",
             "--cache-dir", base / "cache")  # fmt: skip
    (wheel,) = (base / "cache" / "wheels").glob("*/*/psutil-*macosx*arm64*.whl")
    with zipfile.ZipFile(wheel) as zf:
        (so,) = [n for n in zf.namelist() if n.endswith(".so")]
        SEEDS["macho"] = zf.read(so)
    SEEDS["pyz"] = (base / "dist" / "hostmetrics-1.0.0-linux-amd64.pyz").read_bytes()


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_mutated_macho_gives_reports_never_an_exception(data: st.DataObject) -> None:
    mutant = data.draw(st.composite(lambda d: mutate(d, SEEDS["macho"], (4096,)))())
    reports = macho.audit(mutant, "mutant.so")
    assert reports
    for report in reports:
        assert report.checks and all(c.evidence for c in report.checks)
        if report.check("parse") is not None:
            assert [c.state for c in report.checks] == [State.FAIL]


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_mutated_zipapp_is_audited_to_a_result(
    data: st.DataObject, tmp_path_factory: pytest.TempPathFactory
) -> None:
    pyz = SEEDS["pyz"]
    # the zip's tables sit at its end: damage there as well as anywhere
    mutant = data.draw(st.composite(lambda d: mutate(d, pyz[::-1], (4096,)))())[::-1]
    path = tmp_path_factory.mktemp("mutant") / "hostmetrics-1.0.0-linux-amd64.pyz"
    path.write_bytes(mutant)
    result = audit_paths([path])  # no exception, whatever the damage
    if not zipfile.is_zipfile(path):  # unreadable: said so, not skipped in silence
        assert result.problems or result.unparseable or result.not_audited
