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


def test_the_schemas_take_the_service_areas_from_the_configuration_and_out_writes_only_what_changed(tmp_path):
    import shutil

    from engine.config.loader import bundled_config_dir

    root = tmp_path / "config"
    shutil.copytree(bundled_config_dir(), root)
    bundled = json.loads(schema("programme").stdout)
    assert json.loads(schema("--config", str(root), "programme").stdout) == bundled  # the same rules: the same schema
    vocabularies = root / "rules" / "vocabularies.yaml"
    vocabularies.write_text(vocabularies.read_text().replace("    - {key: mash, label: MASH}\n", "    - {key: fostering, label: Fostering}\n"))
    own = json.loads(schema("--config", str(root), "programme").stdout)
    assert own["properties"]["service"]["enum"] == [
        "early_help", "fostering", "assessment", "safeguarding", "get_safe", "children_in_care", "care_leavers"]
    before = {p.name: p.read_bytes() for p in (root / "schemas").iterdir()}
    result = schema("--config", str(root), "--out", str(root / "schemas"))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f"wrote {root / 'schemas' / 'programme.schema.json'}"]
    after = {p.name: p.read_bytes() for p in (root / "schemas").iterdir()}
    assert {name for name in after if after[name] != before[name]} == {"programme.schema.json"}
    assert json.loads(after["programme.schema.json"]) == own
    # written once, it is up to date: nothing is written again
    assert schema("--config", str(root), "--out", str(root / "schemas")).stdout == ""


def test_a_kind_and_out_together_are_a_usage_error(tmp_path):
    result = schema("programme", "--out", str(tmp_path))
    assert result.exit_code == 2
    assert not list(tmp_path.iterdir())
