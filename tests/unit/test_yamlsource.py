"""YAML loading keeps every node's line and column and turns each failure into a Problem."""

from __future__ import annotations

import textwrap

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.config.yamlsource import MAX_DEPTH, Document, load_yaml, load_yaml_file
from engine.problems import Location, Problem


def load(text: str | bytes, **kwargs) -> tuple[Document | None, list[Problem]]:
    if isinstance(text, str):
        text = textwrap.dedent(text)
    return load_yaml(text, "f.yaml", **kwargs)


def ok(text: str) -> Document:
    doc, problems = load(text)
    assert problems == []
    assert doc is not None
    return doc


def where(problem: Problem) -> tuple[int, int]:
    return problem.location.line, problem.location.column


WORKFLOW = """\
workflow: audit
states:
  allocated:
    initial: true
    label: Allocated
  done:
    terminal: true
steps:
  - name: one
  - [a, b]
"""


# --------------------------------------------------------------------------- positions


def test_value_and_key_positions_are_one_based() -> None:
    doc = ok(WORKFLOW)
    assert doc.file == "f.yaml"
    assert doc.positions[()] == (1, 1)
    assert doc.positions[("workflow",)] == (1, 11)
    assert doc.key_positions[("workflow",)] == (1, 1)
    assert doc.positions[("states", "allocated", "initial")] == (4, 14)
    assert doc.key_positions[("states", "allocated", "initial")] == (4, 5)
    assert doc.positions[("states", "allocated")] == (4, 5)
    assert doc.key_positions[("states", "allocated")] == (3, 3)
    assert doc.positions[("steps",)] == (9, 3)
    assert doc.positions[("steps", 0)] == (9, 5)
    assert doc.positions[("steps", 0, "name")] == (9, 11)
    assert doc.positions[("steps", 1, 1)] == (10, 9)


def test_location_uses_value_key_or_nearest_ancestor() -> None:
    doc = ok(WORKFLOW)
    assert doc.location(("states", "allocated", "initial")) == Location("f.yaml", 4, 14)
    assert doc.location(["states", "allocated", "initial"], key=True) == Location("f.yaml", 4, 5)
    # Not in the file: the nearest ancestor that is.
    assert doc.location(("states", "allocated", "missing")) == Location("f.yaml", 4, 5)
    assert doc.location(("states", "allocated", "missing"), key=True) == Location("f.yaml", 4, 5)
    assert doc.location(("steps", 1, 7)) == Location("f.yaml", 10, 5)
    # A list item has no key: key=True falls back to the value.
    assert doc.location(("steps", 0), key=True) == Location("f.yaml", 9, 5)
    assert doc.location(()) == Location("f.yaml", 1, 1)


def test_positions_inside_flow_collections() -> None:
    doc = ok("a: {b: [1, {c: x}], d: 'q'}\n")
    assert doc.data == {"a": {"b": [1, {"c": "x"}], "d": "q"}}
    assert doc.positions[("a", "b", 1, "c")] == (1, 16)
    assert doc.key_positions[("a", "b", 1, "c")] == (1, 13)
    assert doc.positions[("a", "d")] == (1, 24)


def test_empty_file_and_comments_only_give_no_data() -> None:
    for text in ("", "# only a comment\n", "---\n"):
        doc, problems = load(text)
        assert problems == []
        assert doc is not None and doc.data is None
    doc, _ = load("")
    assert doc.location(("anything",)) == Location("f.yaml", 1, 1)


def test_bom_is_accepted() -> None:
    doc, problems = load(b"\xef\xbb\xbfa: 1\nb: 2\n")
    assert problems == []
    assert doc.data == {"a": 1, "b": 2}
    assert doc.positions[("b",)] == (2, 4)
    doc, problems = load("\ufeffa: 1\n")
    assert problems == [] and doc.data == {"a": 1}


def test_crlf_line_endings_count_once() -> None:
    doc, problems = load(b"a: 1\r\nb:\r\n  c: 2\r\n")
    assert problems == []
    assert doc.positions[("b", "c")] == (3, 6)


# --------------------------------------------------------------------------- scalars


def test_yes_no_on_off_are_words_keys_and_values() -> None:
    doc = ok(
        """\
        on: yes
        off: no
        yes: on
        no: off
        y: n
        Y: N
        flags: [Yes, NO, On, OFF]
        """
    )
    assert doc.data == {
        "on": "yes", "off": "no", "yes": "on", "no": "off", "y": "n", "Y": "N",
        "flags": ["Yes", "NO", "On", "OFF"],
    }


def test_only_true_and_false_are_booleans_in_any_case() -> None:
    doc = ok("a: [true, True, TRUE, false, False, FALSE, tRuE]\n")
    assert doc.data == {"a": [True, True, True, False, False, False, True]}


def test_null_forms() -> None:
    doc = ok("a: null\nb: ~\nc:\nd: NULL\ne: ''\n")
    assert doc.data == {"a": None, "b": None, "c": None, "d": None, "e": ""}


def test_numbers_follow_the_core_schema() -> None:
    doc = ok("a: [1, -2, +3, 1.5, .5, 1e3, 2.0E-2, 007]\nb: [0o17, 0x1F, 1_000, .inf, 1.2.3, '12']\n")
    assert doc.data["a"] == [1, -2, 3, 1.5, 0.5, 1000.0, 0.02, 7]
    assert doc.data["b"] == ["0o17", "0x1F", "1_000", ".inf", "1.2.3", "12"]
    assert isinstance(doc.data["a"][5], float)


def test_dates_and_timestamps_stay_strings() -> None:
    doc = ok("start: 2026-10-01\nat: 2026-10-01T09:30:00Z\nlist: [2026-01-01, 2026-1-1]\n")
    assert doc.data == {
        "start": "2026-10-01",
        "at": "2026-10-01T09:30:00Z",
        "list": ["2026-01-01", "2026-1-1"],
    }


def test_quoted_and_block_scalars_are_strings() -> None:
    doc = ok("a: '1'\nb: \"true\"\nc: |\n  x\n  y\nd: >-\n  p\n  q\n")
    assert doc.data == {"a": "1", "b": "true", "c": "x\ny\n", "d": "p q"}


def test_core_tags_are_honoured_and_others_refused() -> None:
    doc, problems = load("a: !!str 12\nb: !!int '7'\nc: !!python/object:os.system x\nd: !custom {k: v}\n")
    assert doc is not None
    assert doc.data == {"a": "12", "b": 7, "c": "x", "d": {"k": "v"}}
    assert [(p.code, where(p)) for p in problems] == [("yaml-tag", (3, 4)), ("yaml-tag", (4, 4))]
    assert "!!python/object:os.system" in problems[0].message


# --------------------------------------------------------------------------- keys


def test_duplicate_key_is_reported_at_the_second_with_both_positions() -> None:
    doc, problems = load(
        """\
        states:
          allocated:
            initial: true
            label: x
            initial: false
        """
    )
    assert doc is not None
    assert doc.data == {"states": {"allocated": {"initial": True, "label": "x"}}}
    assert len(problems) == 1
    problem = problems[0]
    assert problem.code == "duplicate-key" and problem.severity == "error"
    assert where(problem) == (5, 5)
    assert problem.message == "duplicate key 'initial' (first defined at line 3, column 5)"
    # The first value and its position are kept.
    assert doc.positions[("states", "allocated", "initial")] == (3, 14)


def test_duplicate_keys_in_flow_mapping_and_with_nested_values() -> None:
    doc, problems = load("a: {x: 1, x: [2, 3]}\nb:\n  c: 1\nb:\n  d: 2\n")
    assert doc.data == {"a": {"x": 1}, "b": {"c": 1}}
    assert [(p.code, where(p)) for p in problems] == [("duplicate-key", (1, 11)), ("duplicate-key", (4, 1))]
    assert "first defined at line 2, column 1" in problems[1].message
    # The dropped value leaves no positions behind.
    assert ("b", "d") not in doc.positions


def test_non_scalar_key_is_refused() -> None:
    doc, problems = load("? [a, b]\n: 1\nok: 2\n? {x: 1}\n: 3\n")
    assert doc is not None
    assert doc.data == {"ok": 2}
    assert [(p.code, where(p)) for p in problems] == [("bad-key", (1, 3)), ("bad-key", (4, 3))]


# --------------------------------------------------------------------------- aliases


def test_aliases_expand_and_point_back_at_the_anchor() -> None:
    doc = ok(
        """\
        base: &b
          x: 1
          y: [1, 2]
        use: *b
        name: &n hello
        again: *n
        """
    )
    assert doc.data["use"] == {"x": 1, "y": [1, 2]}
    assert doc.data["use"] is not doc.data["base"]
    assert doc.data["again"] == "hello"
    assert doc.location(("use",)) == Location("f.yaml", 4, 6)
    assert doc.location(("use", "y", 1)) == Location("f.yaml", 3, 10)
    assert doc.location(("use", "y"), key=True) == Location("f.yaml", 3, 3)


def test_undefined_alias_is_a_problem() -> None:
    doc, problems = load("a: *nowhere\nb: 1\n")
    assert doc is not None and doc.data == {"a": None, "b": 1}
    assert [(p.code, where(p)) for p in problems] == [("yaml-syntax", (1, 4))]


LOL = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def test_billion_laughs_is_refused() -> None:
    doc, problems = load(LOL)
    assert doc is None
    assert [p.code for p in problems] == ["alias-bomb"]
    assert problems[0].message == "too many aliases/expanded nodes (YAML alias bomb?)"
    line, column = where(problems[0])
    assert LOL.splitlines()[line - 1][column - 1] == "*"


def test_deep_nesting_is_refused_not_crashed() -> None:
    # Block nesting is counted as it is read ...
    text = "".join("  " * level + f"k{level}:\n" for level in range(MAX_DEPTH + 5))
    doc, problems = load(text)
    assert doc is None
    assert [(p.code, where(p)) for p in problems] == [("too-deep", (MAX_DEPTH + 1, 2 * MAX_DEPTH + 1))]
    # ... flow nesting may be caught by libyaml's own scanner first; same code either way.
    for text in ("a: " + "[" * 5000 + "]" * 5000 + "\n", "[" * 50000):
        doc, problems = load(text)
        assert doc is None
        assert [p.code for p in problems] == ["too-deep"]


def test_nesting_up_to_the_limit_is_fine() -> None:
    depth = MAX_DEPTH - 1
    _, problems = load("a: " + "[" * depth + "1" + "]" * depth + "\n")
    assert problems == []


def test_alias_that_would_nest_too_deep_is_refused() -> None:
    half = MAX_DEPTH - 10
    text = "a: &a " + "[" * half + "]" * half + "\nb: " + "[" * 20 + "*a" + "]" * 20 + "\n"
    doc, problems = load(text)
    assert doc is None
    assert [(p.code, where(p)) for p in problems] == [("too-deep", (2, 24))]


# --------------------------------------------------------------------------- refusals


def test_oversize_text_is_refused_without_parsing() -> None:
    doc, problems = load("a: [" * 10, max_bytes=20)  # would be a syntax error if parsed
    assert doc is None
    assert [(p.code, where(p)) for p in problems] == [("file-too-large", (1, 1))]
    text = "".join(f"k{i}: 1\n" for i in range(10)).encode()
    assert len(text) == 60
    doc, problems = load(text, max_bytes=59)
    assert [p.code for p in problems] == ["file-too-large"]
    doc, problems = load(text, max_bytes=60)
    assert problems == []


def test_oversize_file_is_refused(tmp_path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("a: 1\n" * 1000)
    doc, problems = load_yaml_file(path, max_bytes=100)
    assert doc is None
    assert problems == [Problem(Location(str(path), 1, 1), "error", "file-too-large", problems[0].message)]


def test_load_yaml_file_uses_display_name(tmp_path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text("a: 1\na: 2\n", encoding="utf-8")
    doc, problems = load_yaml_file(path, display="config/wf.yaml")
    assert doc.file == "config/wf.yaml"
    assert [str(p.location) for p in problems] == ["config/wf.yaml:2:1"]


def test_missing_file_is_a_problem(tmp_path) -> None:
    doc, problems = load_yaml_file(tmp_path / "nope.yaml")
    assert doc is None
    assert [p.code for p in problems] == ["file-unreadable"]


def test_bad_utf8_reports_the_first_bad_byte() -> None:
    doc, problems = load(b"a: 1\nname: caf\xe9 au lait\n")
    assert doc is None
    assert [(p.code, where(p)) for p in problems] == [("encoding", (2, 10))]
    # Columns count characters, not bytes.
    doc, problems = load("a: 1\nnäme: é\xff".encode()[:-2] + b"\xff")
    assert [(p.code, where(p)) for p in problems] == [("encoding", (2, 8))]


def test_utf16_is_refused_with_advice() -> None:
    doc, problems = load("a: 1\n".encode("utf-16"))
    assert doc is None
    assert [p.code for p in problems] == ["encoding"]
    assert "UTF-16" in problems[0].message


def test_lone_surrogate_in_text_is_an_encoding_problem() -> None:
    doc, problems = load("a: 1\nb: x\ud800\n")
    assert doc is None
    assert [(p.code, where(p)) for p in problems] == [("encoding", (2, 5))]


def test_control_character_is_reported_where_it_is() -> None:
    doc, problems = load("a: 1\néé: \x01\n")
    assert doc is None
    assert [(p.code, where(p)) for p in problems] == [("yaml-syntax", (2, 5))]
    assert "#x0001" in problems[0].message


def test_syntax_error_position_and_plain_message() -> None:
    doc, problems = load("workflow: audit\nlabel: Note: this breaks\n")
    assert doc is None
    assert [(p.code, where(p)) for p in problems] == [("yaml-syntax", (2, 12))]
    assert problems[0].message.startswith("mapping values are not allowed")
    assert "quotes" in problems[0].message


def test_unclosed_flow_sequence_names_where_it_started() -> None:
    doc, problems = load("a: 1\nb: [1, 2\nc: 3\n")
    assert doc is None
    assert len(problems) == 1 and problems[0].code == "yaml-syntax"
    assert "line 2, column 4" in problems[0].message


def test_tab_indentation_gets_a_hint() -> None:
    doc, problems = load("states:\n  a: 1\n\tb: 2\n")
    assert doc is None
    assert [(p.code, where(p)) for p in problems] == [("yaml-syntax", (3, 1))]
    assert "tabs" in problems[0].message
    doc, problems = load("states:\n\ta: 1\n")
    assert [(p.code, where(p)) for p in problems] == [("yaml-syntax", (2, 1))]
    assert "tabs" in problems[0].message


def test_multiple_documents_are_refused() -> None:
    doc, problems = load("a: 1\n---\nb: 2\n")
    assert [(p.code, where(p)) for p in problems] == [("multiple-documents", (2, 1))]
    assert doc is not None and doc.data == {"a": 1}


def test_a_single_explicit_document_is_fine() -> None:
    doc = ok("---\na: 1\n...\n")
    assert doc.data == {"a": 1}


# --------------------------------------------------------------------------- scalar_location


SCALARS = """\
plain: a == 1 and b ?? 2
single: 'it''s ?? here'
double: "x ?? y"
literal: |
  x == 1
  and y ?? 2
folded: >-
  status == 'open'
  and days ?? 10
strip: |-
    deep ?? indented
anchored: &t 'q ?? r'
"""


def test_scalar_location_in_plain_scalar() -> None:
    doc = ok(SCALARS)
    assert doc.scalar_location(("plain",), 1, 1) == Location("f.yaml", 1, 8)
    assert doc.scalar_location(("plain",), 1, 14) == Location("f.yaml", 1, 21)


def test_scalar_location_in_quoted_scalars() -> None:
    doc = ok(SCALARS)
    assert doc.data["single"] == "it's ?? here"
    # value column 6 is the first '?'; the doubled quote shifts it one to the right.
    assert doc.scalar_location(("single",), 1, 6) == Location("f.yaml", 2, 16)
    assert doc.scalar_location(("double",), 1, 3) == Location("f.yaml", 3, 12)


def test_scalar_location_in_literal_block() -> None:
    doc = ok(SCALARS)
    assert doc.data["literal"] == "x == 1\nand y ?? 2\n"
    assert doc.scalar_location(("literal",), 1, 1) == Location("f.yaml", 5, 3)
    assert doc.scalar_location(("literal",), 2, 7) == Location("f.yaml", 6, 9)


def test_scalar_location_in_folded_block() -> None:
    doc = ok(SCALARS)
    value = doc.data["folded"]
    assert value == "status == 'open' and days ?? 10"
    # The error is on the block's second source line at column 10 (of the content),
    # which the parser sees on line 1 after the folded first line.
    column = value.index("??") + 1
    assert doc.scalar_location(("folded",), 1, column) == Location("f.yaml", 9, 12)
    assert doc.scalar_location(("folded",), 1, 1) == Location("f.yaml", 8, 3)


def test_scalar_location_in_indented_block_and_anchored_scalar() -> None:
    doc = ok(SCALARS)
    assert doc.scalar_location(("strip",), 1, 6) == Location("f.yaml", 11, 10)
    assert doc.scalar_location(("anchored",), 1, 3) == Location("f.yaml", 12, 17)


def test_when_block_second_line_maps_to_file() -> None:
    doc = ok(
        """\
        transitions:
          - to: closed
            when: >-
              outcome == 'met'
              and ?? > 3
        """
    )
    value = doc.data["transitions"][0]["when"]
    assert value == "outcome == 'met' and ?? > 3"
    # The expression parser reports line 1, column of '??' in the folded text;
    # in the file that is the block's second line, column 5 of its content.
    offset = value.index("??") + 1
    assert doc.scalar_location(("transitions", 0, "when"), 1, offset) == Location("f.yaml", 5, 11)


def test_folded_block_with_blank_line_keeps_lines() -> None:
    doc = ok("when: >\n  a and\n  b\n\n  c ?? d\n")
    assert doc.data["when"] == "a and b\nc ?? d\n"
    assert doc.scalar_location(("when",), 2, 3) == Location("f.yaml", 5, 5)


def test_scalar_location_through_an_alias_and_fallbacks() -> None:
    doc = ok("a: &x 'p ?? q'\nb: *x\nc: 3\n")
    assert doc.scalar_location(("b",), 1, 3) == Location("f.yaml", 1, 10)
    # Not a string, or not there: the value's own location.
    assert doc.scalar_location(("c",), 1, 1) == Location("f.yaml", 3, 4)
    assert doc.scalar_location(("zzz",), 1, 1) == Location("f.yaml", 1, 1)
    # Offsets past the end are clamped.
    assert doc.scalar_location(("a",), 9, 99) == Location("f.yaml", 1, 14)


# --------------------------------------------------------------------------- never raises


def _check_result(result) -> None:
    doc, problems = result
    assert doc is None or isinstance(doc, Document)
    assert isinstance(problems, list)
    assert all(isinstance(p, Problem) and p.severity in ("error", "warning") for p in problems)
    assert doc is not None or problems
    if doc is not None:
        for path in list(doc.positions)[:20]:
            doc.location(path)
            doc.location(path, key=True)
            doc.scalar_location(path, 1, 2)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_random_bytes_never_raise(data: bytes) -> None:
    _check_result(load_yaml(data, "r.yaml"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_random_text_never_raises(text: str) -> None:
    _check_result(load_yaml(text, "r.yaml"))


YAML_ALPHABET = st.sampled_from(list(" \t\n:-[]{},&*!|>'\"#?%@`~\\.0aZ\r\x85\u2028é"))
VALID = textwrap.dedent(
    """\
    workflow: audit
    states:
      allocated: &s
        initial: true
        on: [enter, exit]
      done: *s
    when: >-
      a == 1
      and b
    lit: |
      x
    list:
      - {a: 1, 'b': "c"}
      - ? k
        : v
    """
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(0, len(VALID)), st.integers(0, 3), st.text(YAML_ALPHABET, max_size=4)),
        min_size=1,
        max_size=6,
    )
)
def test_mutations_of_a_valid_document_never_raise(edits) -> None:
    text = VALID
    for offset, delete, insert in edits:
        at = min(offset, len(text))
        text = text[:at] + insert + text[at + delete :]
    _check_result(load_yaml(text, "m.yaml"))


def test_the_valid_document_used_for_mutations_loads() -> None:
    doc, problems = load_yaml(VALID, "m.yaml")
    assert problems == []
    assert doc.data["states"]["done"] == {"initial": True, "on": ["enter", "exit"]}


@pytest.mark.parametrize("text", ["[" * 100_000, "{" * 100_000, "- " * 50_000, "&a " * 1000 + "x"])
def test_pathological_inputs_return_problems(text: str) -> None:
    _check_result(load_yaml(text, "p.yaml"))


def test_reading_once_parses_the_same_text_once_and_hands_out_copies_of_the_problems() -> None:
    from engine.config.yamlsource import reading_once

    text = b"a: 1\na: 2\n"  # a duplicate key: one problem
    with reading_once():
        first, first_problems = load_yaml(text, "x.yaml")
        first_problems.clear()  # a caller adding to or emptying its list changes nobody else's
        again, again_problems = load_yaml(text, "x.yaml")
        other, _ = load_yaml(text, "y.yaml")  # another file with the same bytes is its own document
        with reading_once():  # nested: the same memory
            inner, _ = load_yaml(text, "x.yaml")
    after, _ = load_yaml(text, "x.yaml")
    assert first is not None and again is first and inner is first
    assert [p.code for p in again_problems] == ["duplicate-key"]
    assert other is not first and other is not None and other.file == "y.yaml"
    assert after is not first and after == first
