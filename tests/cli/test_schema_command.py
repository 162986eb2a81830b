"""qaflow schema: the JSON Schemas editors use."""

from __future__ import annotations

import json

import jsonschema
from click.testing import CliRunner

from engine.cli import main
from engine.config.loader import KINDS, schema_for


def schema(*args: str):
    return CliRunner().invoke(main, ["schema", *args], catch_exceptions=False)


def test_without_a_kind_the_kinds_are_listed():
    result = schema()
    assert result.exit_code == 0
    kinds = [line.split("\t")[0] for line in result.stdout.splitlines()]
    assert set(KINDS) <= set(kinds)
    assert all(line.split("\t")[1].endswith(".schema.json") for line in result.stdout.splitlines())
    listed = json.loads(schema("--format", "json").stdout)["kinds"]
    assert listed == sorted(kinds)


def test_each_schema_is_draft_07_and_the_one_validate_uses():
    for kind in KINDS:
        result = schema(kind)
        assert result.exit_code == 0
        printed = json.loads(result.stdout)
        assert printed["$schema"] == "http://json-schema.org/draft-07/schema#"
        jsonschema.Draft7Validator.check_schema(printed)
        assert printed == schema_for(kind)


def test_an_unknown_kind_is_a_usage_error_with_a_suggestion():
    result = schema("workflows")
    assert result.exit_code == 2
    assert "did you mean 'workflow'?" in result.stderr
