"""The shipped JSON schema and the recipe model agree."""

from __future__ import annotations

import json
import tomllib
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from buildkit import recipe as recipe_mod
from buildkit import targets
from buildkit.backends import format_options, registry
from buildkit.checks import model as checks_model
from buildkit.errors import RecipeError
from tests.conftest import RECIPES, SAMPLES
from tests.unit.test_recipe import BAD, GOOD, write

SCHEMA: dict[str, Any] = json.loads(
    files("buildkit").joinpath("data/recipe.schema.json").read_text()
)


def _jsonable(doc: Any) -> Any:
    """TOML dates become strings, as a JSON document would carry them."""
    if isinstance(doc, dict):
        return {k: _jsonable(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_jsonable(v) for v in doc]
    if hasattr(doc, "isoformat"):
        return doc.isoformat()
    return doc


def test_schema_is_valid() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("name", SAMPLES)
def test_samples_valid(name: str) -> None:
    doc = tomllib.loads((RECIPES / name / "recipe.toml").read_text())
    jsonschema.validate(_jsonable(doc), SCHEMA)


def test_schema_keys_match_model() -> None:
    props = SCHEMA["properties"]
    assert set(props) == set(recipe_mod.TOP_KEYS)
    assert set(props["recipe"]["properties"]) == set(recipe_mod.RECIPE_KEYS)
    assert set(props["hardening"]["properties"]) == set(recipe_mod.HARDENING_KEYS)
    waiver = props["hardening"]["properties"]["waivers"]["items"]["properties"]
    assert set(waiver) == set(recipe_mod.WAIVER_KEYS)
    assert props["targets"]["propertyNames"]["enum"] == list(targets.all_targets())
    formats = props["formats"]["properties"]
    assert list(formats) == list(registry())
    for name, options in format_options().items():
        schema_opts = formats[name].get("properties", {})
        assert set(schema_opts) == set(options)
        for key, values in options.items():
            if values == recipe_mod.MODULES:
                assert schema_opts[key]["items"]["pattern"] == recipe_mod.MODULE_RE.pattern
            elif values == recipe_mod.PATHS:
                assert schema_opts[key]["items"]["pattern"] == recipe_mod.PATH_RE.pattern
            else:
                assert schema_opts[key]["enum"] == list(values)
    assert set(props["hardening"]["properties"]["require"]["items"]["enum"]) == set(
        recipe_mod.HARDENING_CHECKS
    )
    target_opts = props["targets"]["additionalProperties"]["properties"]
    assert set(target_opts) == set(recipe_mod.TARGET_KEYS)
    check = props["checks"]["items"]["properties"]
    assert set(check) == set(checks_model.KEYS)
    assert check["targets"]["items"]["enum"] == list(targets.all_targets())


# Cases the schema can judge on its own (the others need the file system or PEP 440/508).
SCHEMA_JUDGES = [
    b
    for b in BAD
    if b[2][0] not in ("malformed TOML", "[recipe].entry", "[recipe].native")
    or "module:" in b[2][1]
]


@pytest.mark.parametrize(
    ("old", "new", "fragments"), SCHEMA_JUDGES, ids=[b[2][0] for b in SCHEMA_JUDGES]
)
def test_schema_and_model_both_reject(
    tmp_path: Path, old: str, new: str, fragments: list[str]
) -> None:
    text = GOOD.replace(old, new, 1)
    with pytest.raises(RecipeError):
        recipe_mod.load(
            write(tmp_path, text), formats=format_options(), targets=targets.all_targets()
        )
    if "points outside" in fragments[0] or "PEP 508" in fragments[0]:
        return  # the model checks the file system and PEP 508; the schema cannot
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(_jsonable(tomllib.loads(text)), SCHEMA)


def test_good_recipe_valid_for_both(tmp_path: Path) -> None:
    jsonschema.validate(_jsonable(tomllib.loads(GOOD)), SCHEMA)
    recipe_mod.load(write(tmp_path, GOOD), formats=format_options(), targets=targets.all_targets())
