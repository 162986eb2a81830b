"""JSON Schema errors come back as plain-English Problems at the line and column they concern."""

from __future__ import annotations

import textwrap

from engine.config.schemacheck import check_schema, make_validator
from engine.config.yamlsource import load_yaml
from engine.problems import Location, Problem

SCHEMA = {
    "type": "object",
    "required": ["workflow", "states"],
    "additionalProperties": False,
    "properties": {
        "workflow": {"type": "string", "pattern": "^[a-z_]+$"},
        "version": {"type": "integer", "minimum": 1},
        "states": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "initial": {"type": "boolean"},
                    "terminal": {"type": "boolean"},
                    "kind": {"enum": ["manual", "automatic", "timer"]},
                },
            },
        },
        "triggers": {"type": "array", "items": {"type": "string"}, "minItems": 1, "uniqueItems": True},
        "deadline": {
            "oneOf": [
                {"type": "string"},
                {
                    "type": "object",
                    "required": ["anchor", "duration"],
                    "additionalProperties": False,
                    "properties": {"anchor": {"type": "string"}, "duration": {"type": "string"}},
                },
            ]
        },
        "action": {
            "oneOf": [
                {
                    "type": "object",
                    "required": ["set"],
                    "additionalProperties": False,
                    "properties": {"set": {"type": "object"}},
                },
                {
                    "type": "object",
                    "required": ["alert"],
                    "additionalProperties": False,
                    "properties": {"alert": {"type": "string"}, "to": {"type": "array"}},
                },
            ]
        },
        "mode": {"anyOf": [{"const": "strict"}, {"const": "lenient"}]},
        "roles": {"type": "object", "propertyNames": {"pattern": "^[a-z_]+$"}},
        "starts": {"type": "string", "format": "date"},
        "title": {"type": "string", "minLength": 1, "maxLength": 10},
    },
}


def check(text: str, schema=SCHEMA) -> list[Problem]:
    doc, problems = load_yaml(textwrap.dedent(text), "wf.yaml")
    assert problems == [] and doc is not None
    return check_schema(doc, schema)


def summary(problems: list[Problem]) -> list[tuple[int, int, str, str]]:
    return [(p.location.line, p.location.column, p.code, p.message) for p in problems]


def test_valid_document_has_no_problems() -> None:
    assert check(
        """\
        workflow: audit
        version: 2
        states:
          open: {initial: true, kind: manual}
          done: {terminal: true}
        deadline: {anchor: allocated, duration: 3 weeks}
        action: {alert: hello, to: [qa_team]}
        mode: strict
        starts: 2026-10-01
        """
    ) == []


def test_unknown_key_points_at_the_key_with_did_you_mean() -> None:
    problems = check(
        """\
        workflow: audit
        states:
          open:
            initial: true
            terminl: false
        trigers: [go]
        """
    )
    assert summary(problems) == [
        (5, 5, "schema-unknown-key", "unknown key 'terminl' (did you mean 'terminal'?)"),
        (6, 1, "schema-unknown-key", "unknown key 'trigers' (did you mean 'triggers'?)"),
    ]


def test_unknown_key_without_a_close_match_lists_the_choices() -> None:
    problems = check("workflow: a\nstates: {s: {zzz: 1}}\n")
    assert summary(problems) == [
        (2, 14, "schema-unknown-key", "unknown key 'zzz' (expected one of: initial, terminal, kind)"),
    ]


def test_missing_required_key_at_the_mapping() -> None:
    problems = check("# header\nworkflow: audit\nversion: 1\n")
    assert summary(problems) == [(2, 1, "schema-required", "missing required key 'states'")]


def test_missing_required_keys_in_empty_file_at_line_one() -> None:
    doc, _ = load_yaml("{}\n", "wf.yaml")
    problems = check_schema(doc, SCHEMA)
    assert summary(problems) == [
        (1, 1, "schema-required", "missing required key 'states'"),
        (1, 1, "schema-required", "missing required key 'workflow'"),
    ]
    doc, _ = load_yaml("", "empty.yaml")
    assert summary(check_schema(doc, SCHEMA)) == [
        (1, 1, "schema-type", "expected a mapping, found nothing"),
    ]


def test_wrong_type_names_both_kinds_in_plain_words() -> None:
    problems = check(
        """\
        workflow: audit
        version: three
        states:
          open:
            initial: yes
        triggers: go
        """
    )
    assert summary(problems) == [
        (2, 10, "schema-type", "expected a whole number, found text 'three'"),
        (5, 14, "schema-type", "expected true or false, found text 'yes'"),
        (6, 11, "schema-type", "expected a list, found text 'go'"),
    ]


def test_wrong_type_for_nothing_list_mapping_and_number() -> None:
    problems = check("workflow: [a]\nstates:\ntitle: 12\n")
    assert summary(problems) == [
        (1, 11, "schema-type", "expected text, found a list"),
        (2, 8, "schema-type", "expected a mapping, found nothing"),
        (3, 8, "schema-type", "expected text, found number 12"),
    ]


def test_enum_with_did_you_mean() -> None:
    problems = check("workflow: a\nstates:\n  open: {kind: manul}\n")
    assert summary(problems) == [
        (3, 16, "schema-enum", "'manul' is not one of: manual, automatic, timer (did you mean 'manual'?)"),
    ]


def test_choice_of_constants_reads_like_an_enum() -> None:
    problems = check("workflow: a\nstates: {s: {}}\nmode: strikt\n")
    assert summary(problems) == [
        (3, 7, "schema-enum", "'strikt' is not one of: strict, lenient (did you mean 'strict'?)"),
    ]


def test_one_of_picks_the_branch_whose_type_matched() -> None:
    problems = check(
        """\
        workflow: a
        states: {s: {}}
        deadline:
          anchor: allocated
          durration: 3 weeks
        """
    )
    # Not "expected text" from the string branch: the mapping branch is the one meant.
    assert summary(problems) == [
        (4, 3, "schema-required", "missing required key 'duration'"),
        (5, 3, "schema-unknown-key", "unknown key 'durration' (did you mean 'duration'?)"),
    ]


def test_one_of_picks_the_branch_whose_required_key_is_present() -> None:
    problems = check(
        """\
        workflow: a
        states: {s: {}}
        action:
          alert: hello
          to: [qa_team]
          urgent: true
        """
    )
    assert summary(problems) == [
        (6, 3, "schema-unknown-key", "unknown key 'urgent' (expected one of: alert, to)"),
    ]


def test_one_of_with_no_matching_type_lists_the_types() -> None:
    problems = check("workflow: a\nstates: {s: {}}\ndeadline: [3, weeks]\n")
    assert summary(problems) == [
        (3, 11, "schema-type", "expected text or a mapping, found a list"),
    ]


def test_one_of_matching_several_branches() -> None:
    schema = {"oneOf": [{"type": "string"}, {"minLength": 1}]}
    doc, _ = load_yaml("hello\n", "x.yaml")
    assert summary(check_schema(doc, schema)) == [
        (1, 1, "schema-invalid", "'hello' matches more than one of the allowed forms"),
    ]


def test_short_messages_for_other_keywords() -> None:
    problems = check(
        """\
        workflow: Audit
        version: 0
        states: {}
        triggers: []
        starts: 2026-13-01
        title: ''
        """
    )
    assert summary(problems) == [
        (1, 11, "schema-invalid", "'Audit' is not in the expected form (pattern ^[a-z_]+$)"),
        (2, 10, "schema-invalid", "must be at least 1, found 0"),
        (3, 9, "schema-invalid", "must not be an empty mapping"),
        (4, 11, "schema-invalid", "must be a list with at least one item"),
        (5, 9, "schema-invalid", "'2026-13-01' is not a valid date"),
        (6, 8, "schema-invalid", "must not be empty text"),
    ]


def test_more_short_messages() -> None:
    problems = check("workflow: a\nstates: {s: {}}\ntriggers: [go, go]\ntitle: far too long here\n")
    assert summary(problems) == [
        (3, 11, "schema-invalid", "items must not repeat ('go' appears more than once)"),
        (4, 8, "schema-invalid", "must be at most 10 characters long"),
    ]


def test_property_names_point_at_the_key() -> None:
    problems = check("workflow: a\nstates: {s: {}}\nroles:\n  qa_team: 1\n  Head: 2\n")
    assert summary(problems) == [
        (5, 3, "schema-invalid", "key 'Head' is not in the expected form (pattern ^[a-z_]+$)"),
    ]


def test_problems_are_sorted_deduplicated_and_prefixed() -> None:
    doc, _ = load_yaml("zeta: 1\nworkflow: a\nstates: {s: {}}\nalpha: 2\n", "wf.yaml")
    problems = check_schema(doc, SCHEMA, code_prefix="programme")
    assert [(p.location.line, p.code) for p in problems] == [
        (1, "programme-unknown-key"),
        (4, "programme-unknown-key"),
    ]
    assert problems == sorted(problems, key=lambda p: p.sort_key())
    assert all(p.severity == "error" for p in problems)
    # allOf repeating the same rule yields the same problem once.
    doc, _ = load_yaml("a: 1\n", "x.yaml")
    twice = {"allOf": [{"required": ["b"]}, {"required": ["b"]}]}
    assert check_schema(doc, twice) == [
        Problem(Location("x.yaml", 1, 1), "error", "schema-required", "missing required key 'b'")
    ]


def test_errors_inside_aliased_values_point_at_the_anchor() -> None:
    problems = check(
        """\
        workflow: a
        states:
          open: &common
            initial: maybe
          other: *common
        """
    )
    # Both copies were written once, at line 4: one problem after deduplication.
    assert summary(problems) == [(4, 14, "schema-type", "expected true or false, found text 'maybe'")]


def test_prebuilt_validator_is_accepted_and_cached_per_schema() -> None:
    doc, _ = load_yaml("workflow: a\n", "wf.yaml")
    validator = make_validator(SCHEMA)
    assert summary(check_schema(doc, validator)) == [
        (1, 1, "schema-required", "missing required key 'states'"),
    ]
    first = check_schema(doc, SCHEMA)
    assert check_schema(doc, SCHEMA) == first


def test_invalid_schema_is_a_problem_not_a_crash() -> None:
    doc, _ = load_yaml("a: 1\n", "x.yaml")
    problems = check_schema(doc, {"type": "no-such-type"})
    assert [p.code for p in problems] == ["schema-invalid"]
