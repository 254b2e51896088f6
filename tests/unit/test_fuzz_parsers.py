"""Property-based fuzzing of what buildkit reads from users and from release folders:
recipes, lockfiles, SHA256SUMS and manifest.json. Whatever the bytes, the answer is a
value or buildkit's own error (recipes and lockfiles: bad input, exit 2), never an
unhandled exception."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from buildkit import lock
from buildkit.errors import BuildkitError, InputError
from buildkit.release import checksums, manifest
from buildkit.release.verify import verify
from tests.unit.test_recipe import GOOD, load, write

FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))

LOCK = """\
# buildkit-lock: 1
# recipe: hostmetrics
# target: linux-amd64
# python: 3.11
# inputs-digest: sha256:40a2686bdc95753aad042a0126187c803c4be008857d6a71d6b1c6628f48725d
psutil==7.2.2 \\
    --hash=sha256:0746f5f8d406af344fd547f1c8daa5f5c33dbc293bb8d6a16d80b4bb88f59372 \\
    --hash=sha256:076a2d2f923fd4821644f5ba89f059523da90dc9014e85f8e45a5774ca5bc6f9
"""

SUMS = (
    "0746f5f8d406af344fd547f1c8daa5f5c33dbc293bb8d6a16d80b4bb88f59372  a.pex\n"
    "076a2d2f923fd4821644f5ba89f059523da90dc9014e85f8e45a5774ca5bc6f9  manifest.json\n"
)

MANIFEST = json.dumps(
    {"schema": manifest.SCHEMA, "artifacts": [{"name": "a.pex", "sha256": "0" * 64, "size": 1,
     "recipe": "demo", "version": "1.0", "target": "linux-amd64", "format": "pex"}]}
)  # fmt: skip

# Characters that matter to the formats (quotes, brackets, separators, escapes, NUL,
# surrogate-free unicode) as well as arbitrary text.
SPICE = st.sampled_from([*"\"'[]{}=,.:;#\\\n\r\t /@$`<>|&*?", "\0", "é", "\u202e", "../"])


@st.composite
def mutated(draw: st.DrawFn, seed: str) -> str:
    """``seed`` with a few insertions, deletions and replacements."""
    text = list(seed)
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, max(0, len(text) - 1)))
        piece = draw(st.one_of(SPICE, st.text(max_size=8)))
        kind = draw(st.sampled_from(["insert", "delete", "replace", "cut"]))
        if kind == "insert":
            text[at:at] = list(piece)
        elif kind == "delete":
            del text[at : at + draw(st.integers(1, 12))]
        elif kind == "replace":
            text[at : at + len(piece)] = list(piece)
        else:
            del text[at:]
    return "".join(text)


@FUZZ
@given(st.one_of(mutated(GOOD), st.text(max_size=300)))
def test_recipe_text_gives_a_recipe_or_a_recipe_error(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = write(Path(tmp), text)
        try:
            load(path)
        except InputError as exc:
            assert exc.exit_code == 2 and str(path) in str(exc)


@FUZZ
@given(st.one_of(mutated(LOCK), st.text(max_size=300)))
def test_lockfile_text_gives_a_lock_or_an_input_error(text: str) -> None:
    try:
        parsed = lock.parse(text, Path("lockfiles/x/linux-amd64.txt"))
    except InputError as exc:
        assert exc.exit_code == 2 and "lockfiles/x/linux-amd64.txt" in str(exc)
        return
    for req in parsed.requirements:  # what a lock check reads from each entry
        assert req.name and all(len(h) == 64 for h in req.hashes)


@FUZZ
@given(st.one_of(mutated(SUMS), st.text(max_size=300)))
def test_sha256sums_text_gives_names_in_the_folder_or_a_check_failure(text: str) -> None:
    try:
        parsed = checksums.parse(text, Path("SHA256SUMS"))
    except BuildkitError as exc:
        assert exc.exit_code == 1 and "SHA256SUMS:" in str(exc)
        return
    for name, digest in parsed.items():
        assert checksums.is_plain_name(name) and len(digest) == 64


@FUZZ
@given(
    st.one_of(mutated(MANIFEST), st.text(max_size=300)),
    st.one_of(mutated(SUMS), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))),
)
def test_verify_reads_any_manifest_and_sums_without_crashing(manifest_text: str, sums: str) -> None:
    folder = Path(tempfile.mkdtemp())
    try:
        (folder / "manifest.json").write_text(manifest_text, "utf-8", errors="surrogatepass")
        (folder / "SHA256SUMS").write_text(sums, "utf-8", errors="surrogatepass")
        (folder / "a.pex").write_bytes(b"x")
        manifest.read(folder)
        result = verify(folder)
        assert not result.ok  # nothing here is a good release
        for item in result.failures:
            assert item.detail
    finally:
        shutil.rmtree(folder)


JSON_SHAPES = [
    "[]", "null", "5", '"x"', "{}", '{"artifacts": 5}', '{"artifacts": [1, null]}',
    '{"artifacts": [{"name": 1, "sha256": []}]}', '{"artifacts": [{"name": "../x"}]}',
    '{"artifacts": [{"name": "a.pex", "sha256": "0", "recipe": {}, "version": []}]}',
]  # fmt: skip


@FUZZ
@given(
    st.one_of(
        st.sampled_from(JSON_SHAPES),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=5),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(
                    st.sampled_from(["artifacts", "name", "sha256", "recipe", "version", "x"]),
                    inner,
                    max_size=4,
                )
            ),
            max_leaves=12,
        ).map(json.dumps),
    )
)
def test_verify_reads_any_json_shape_of_manifest(text: str) -> None:
    folder = Path(tempfile.mkdtemp())
    try:
        (folder / "manifest.json").write_text(text)
        (folder / "a.pex").write_bytes(b"x")
        checksums.write(folder, {"manifest.json": hashlib.sha256(text.encode()).hexdigest()})
        manifest.read(folder)
        assert not verify(folder).ok
    finally:
        shutil.rmtree(folder)
