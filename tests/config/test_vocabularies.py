"""Vocabularies: a list of terms defined once in the rules, used by payload schemas and data fields."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from engine import DataInvalid, Engine, PayloadInvalid
from engine.config.loader import check_config
from engine.config.validate import validate_paths
from engine.errors import EvaluationError

RULES = """\
vocabularies:
  themes:
    - chronology
    - {key: direct_work, label: Direct work with the child}
    - {key: smart_plans, label: "Plans: specific and measurable", description: Each plan says who does what by when.}
"""

WORKFLOW = """\
workflow: audit
version: 1
start: {roles: [qa]}
data:
  case_id: {type: string, required: true}
  focus: {type: string, vocabulary: themes}
  tags: {type: array, vocabulary: themes}
roles:
  qa: {}
states:
  open: {initial: true}
  done: {terminal: true}
triggers:
  submit:
    roles: [qa]
    payload:
      type: object
      additionalProperties: false
      properties:
        themes: {type: array, uniqueItems: true, items: {vocabulary: themes}}
        main_theme: {vocabulary: themes, description: The theme that stood out.}
        vocabulary: {type: string}
transitions:
  - {trigger: submit, from: open, to: done}
"""

SCENARIO = """\
scenarios:
  - name: themes
    workflow: audit
    given: {at: 2026-10-01T09:00, actor: qa-1, roles: [qa], data: {case_id: C-1}}
    steps:
      - fire: submit
        roles: [qa]
        payload: {themes: [chronology, direct_wrok]}
      - fire: submit
        roles: [qa]
        payload: {themes: [chronolgy]}
        refused: PayloadInvalid
"""


def config(root: Path, workflow: str = WORKFLOW, rules: str = RULES, scenario: str | None = None) -> Path:
    for folder, name, text in (("workflows", "audit", workflow), ("rules", "rules", rules), ("scenarios", "audit", scenario)):
        if text is not None:
            (root / folder).mkdir(parents=True, exist_ok=True)
            (root / folder / f"{name}.yaml").write_text(textwrap.dedent(text))
    return root


def position(text: str, needle: str, nth: int = 0) -> tuple[int, int]:
    """(line, column) of the nth occurrence of needle in text, counted from 1."""
    index = -1
    for _ in range(nth + 1):
        index = text.index(needle, index + 1)
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


@pytest.fixture
def definitions(tmp_path):
    definitions, problems = check_config(config(tmp_path))
    assert definitions is not None, "\n".join(map(str, problems))
    return definitions


def test_the_rules_keep_the_terms_in_order_with_labels(definitions):
    themes = definitions.vocabularies["themes"]
    assert themes.keys == ("chronology", "direct_work", "smart_plans")
    assert themes.label("chronology") == "Chronology" and themes.label("smart_plans") == "Plans: specific and measurable"
    assert themes.descriptions["smart_plans"] == "Each plan says who does what by when."


def test_a_payload_schema_vocabulary_becomes_an_enum_wherever_a_schema_is(definitions):
    schema = definitions.workflows["audit"].triggers["submit"].payload_schema
    keys = ["chronology", "direct_work", "smart_plans"]
    assert schema["properties"]["themes"]["items"] == {"enum": keys}
    assert schema["properties"]["main_theme"] == {"enum": keys, "description": "The theme that stood out."}
    assert schema["properties"]["vocabulary"] == {"type": "string"}  # a property named 'vocabulary' is left alone
    eng = Engine(definitions)
    inst = eng.start("audit", {"case_id": "C-1"}, actor="qa-1", roles=["qa"], at="2026-10-01T09:00")
    with pytest.raises(PayloadInvalid, match="'chronolgy' is not one of"):
        eng.fire(inst.id, "submit", {"themes": ["chronolgy"]}, actor="qa-1", roles=["qa"], at="2026-10-02T09:00")
    eng.fire(inst.id, "submit", {"themes": ["chronology", "smart_plans"], "main_theme": "direct_work"},
             actor="qa-1", roles=["qa"], at="2026-10-02T09:00")
    assert eng.get(inst.id).state == "done"


def test_a_data_field_vocabulary_checks_a_value_or_each_item_of_a_list(definitions):
    eng = Engine(definitions)
    assert definitions.workflows["audit"].fields["focus"].enum == ("chronology", "direct_work", "smart_plans")
    eng.start("audit", {"case_id": "C-1", "focus": "chronology", "tags": ["direct_work"]}, actor="qa-1", roles=["qa"], at="2026-10-01")
    with pytest.raises(DataInvalid, match="'focus' should be one of chronology, direct_work, smart_plans, found 'neglect'"):
        eng.start("audit", {"case_id": "C-1", "focus": "neglect"}, actor="qa-1", roles=["qa"], at="2026-10-01")
    with pytest.raises(DataInvalid, match=r"each item of 'tags' should be one of .*, found 'neglect'"):
        eng.start("audit", {"case_id": "C-1", "tags": ["chronology", "neglect"]}, actor="qa-1", roles=["qa"], at="2026-10-01")


def test_an_unknown_vocabulary_is_an_error_where_it_is_named_with_a_suggestion(tmp_path):
    text = WORKFLOW.replace("items: {vocabulary: themes}", "items: {vocabulary: theme}").replace(
        "tags: {type: array, vocabulary: themes}", "tags: {type: array, vocabulary: topics}")
    definitions, problems = check_config(config(tmp_path, text))
    assert definitions is None
    errors = [(p.code, p.location.line, p.location.column, p.message) for p in problems if p.severity == "error"]
    assert errors == [
        ("unknown-vocabulary", *position(text, "topics"), "unknown vocabulary 'topics' (the rules define: themes)"),
        ("unknown-vocabulary", *position(text, "theme}"), "unknown vocabulary 'theme'; did you mean 'themes'? (the rules define: themes)"),
    ]


def test_a_vocabulary_beside_an_enum_and_a_term_given_twice_are_errors(tmp_path):
    text = WORKFLOW.replace("main_theme: {vocabulary: themes,", "main_theme: {enum: [a], vocabulary: themes,")
    rules = RULES + "    - direct_work\n"
    _, problems = check_config(config(tmp_path, text, rules))
    errors = sorted((p.code, p.location.file.rsplit("/", 1)[-1], p.location.line) for p in problems if p.severity == "error")
    assert errors == [("duplicate-name", "rules.yaml", 6), ("vocabulary-and-enum", "audit.yaml", position(text, "vocabulary: themes, desc")[0])]


def test_the_rules_schema_refuses_a_term_that_is_not_an_identifier(tmp_path):
    _, problems = check_config(config(tmp_path, rules=RULES + "    - Direct Work\n"))
    in_rules = [p for p in problems if p.severity == "error" and p.location.file.endswith("rules.yaml")]
    assert [p.location.line for p in in_rules] == [6]


def test_validate_finds_a_misspelt_theme_in_a_scenario_payload(tmp_path):
    root = config(tmp_path, scenario=SCENARIO)
    problems = [p for p in validate_paths([root]) if p.code == "scenario-payload"]
    assert len(problems) == 1  # the second step expects the refusal: it is not reported
    (p,) = problems
    assert (p.location.line, p.location.column) == position(SCENARIO, "direct_wrok")
    assert p.message == ("'submit' would refuse this payload: 'direct_wrok' is not one of "
                         "['chronology', 'direct_work', 'smart_plans']; did you mean 'direct_work'?")


def test_changing_a_vocabulary_needs_no_new_workflow_version(tmp_path):
    first, _ = check_config(config(tmp_path / "a"))
    second, _ = check_config(config(tmp_path / "b", rules=RULES + "    - neglect\n"))
    assert first is not None and second is not None
    assert first.workflows["audit"].digest == second.workflows["audit"].digest
    assert "neglect" in second.workflows["audit"].triggers["submit"].payload_schema["properties"]["main_theme"]["enum"]


def test_label_gives_the_words_of_a_vocabulary_term_as_it_does_a_grade(definitions):
    label = definitions.functions["label"]
    assert label("themes", "smart_plans") == "Plans: specific and measurable"
    assert label("themes", "not_a_term") is None
    with pytest.raises(EvaluationError, match="unknown scale or vocabulary 'theme'"):
        label("theme", "chronology")
