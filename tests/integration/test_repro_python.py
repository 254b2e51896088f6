"""Which Python repro's later builds run buildkit on: a real interpreter is probed (and
hostile stand-ins refused) by running it."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildkit import repro

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    "body",
    [
        "#!/bin/sh\necho hello\n",  # runs, but is no Python
        "#!/bin/sh\necho CPython 3 10 4\n",  # too old
        "#!/bin/sh\necho PyPy 3 11 0\n",  # not CPython
        "#!/bin/sh\nexit 3\n",  # does not run
    ],
)
def test_a_python_that_is_not_cpython_311_is_refused(tmp_path: Path, body: str) -> None:
    from buildkit.errors import InputError

    fake = tmp_path / "python3.12"
    fake.write_text(body)
    fake.chmod(0o755)
    with pytest.raises(InputError, match=r"--python .*python3\.12: not a CPython 3\.11"):
        repro.other_python(fake)
    with pytest.raises(InputError):
        repro.other_python(tmp_path / "missing")


def test_another_python_is_found_or_none(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Found: a different minor version than this one; pyenv's shims that do not run and
    interpreters of this version are passed over."""
    import sys

    mine = f"{sys.version_info[0]}.{sys.version_info[1]}"
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "pyenv"))
    found = repro.other_python(None)
    if found is not None:
        assert found[1].rsplit(".", 1)[0] != mine and found[0].exists()
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    for minor in range(11, 15):
        (bin_ / f"python3.{minor}").write_text(
            f"#!/bin/sh\necho CPython 3 {sys.version_info[1]} 0\n"
        )
        (bin_ / f"python3.{minor}").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_))
    assert repro.other_python(None) is None
