"""Quoted values in conditions and messages are checked against what the compared name can hold."""

from __future__ import annotations

import keyword
import textwrap
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.config.loader import check_config
from engine.config.terms import quoted_values

RULES = """\
vocabularies:
  themes: [chronology, direct_work]
"""

WORKFLOW = """\
workflow: audit
version: 1
start: {roles: [qa]}
data:
  case_id: {type: string, required: true}
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
      properties:
        themes: {type: array, items: {vocabulary: themes}}
transitions:
  - trigger: submit
    from: open
    to: done
    when: '"{THEME}" in payload.themes'
    actions:
      - alert:
          to: [qa]
          message: "Done{' (chronology)' if 'chronolgy' in data.tags else ''}."
"""


def config(root: Path, theme: str, rules: str = RULES) -> Path:
    (root / "workflows").mkdir(parents=True, exist_ok=True)
    (root / "rules").mkdir(exist_ok=True)
    (root / "workflows" / "audit.yaml").write_text(textwrap.dedent(WORKFLOW).replace("{THEME}", theme))
    (root / "rules" / "rules.yaml").write_text(rules)
    return root


def terms(problems) -> list[tuple[str, int, int, str]]:
    return [(p.severity, p.location.line, p.location.column, p.message) for p in problems if p.code == "unknown-term"]


def position(text: str, needle: str) -> tuple[int, int]:
    """(line, column) of needle in text, counted from 1."""
    index = text.index(needle)
    return text.count("\n", 0, index) + 1, index - (text.rfind("\n", 0, index) + 1) + 1


def test_a_term_of_a_vocabulary_is_checked_where_a_list_is_searched_in_a_condition_and_a_message(tmp_path):
    _, problems = check_config(config(tmp_path, "direct_wrok"))
    text = (tmp_path / "workflows" / "audit.yaml").read_text()
    assert terms(problems) == [
        ("error", *position(text, '"direct_wrok"'),
         "'direct_wrok' is never an item of payload.themes (it is one of: chronology, direct_work); did you mean 'direct_work'?"),
        ("error", *position(text, "'chronolgy'"),
         "'chronolgy' is never an item of data.tags (it is one of: chronology, direct_work); did you mean 'chronology'?"),
    ]


def test_the_terms_are_those_of_the_configuration_being_read(tmp_path):
    rules = RULES.replace("[chronology, direct_work]", "[chronology, direct_work, neglect, chronolgy]")
    definitions, problems = check_config(config(tmp_path, "neglect", rules))
    assert definitions is not None
    assert terms(problems) == []  # 'neglect' and even 'chronolgy' are terms of this configuration


@settings(max_examples=200, deadline=None)
@given(
    before=st.sampled_from(["", "  ", "data.x != null and ", "(\n  payload.y == 1) or\n    "]),
    # names, not keywords: "def == 'x'" is no comparison at all
    path=st.lists(st.from_regex(r"[a-z][a-z_]{0,8}", fullmatch=True).filter(lambda w: not keyword.iskeyword(w)), min_size=1, max_size=4),
    value=st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"], exclude_characters="'\"\\"), max_size=12),
    reversed_=st.booleans(),
    quote=st.sampled_from(["'", '"']),
)
def test_each_quoted_value_is_found_at_its_own_line_and_column(before, path, value, reversed_, quote):
    name = ".".join(path)
    literal = f"{quote}{value}{quote}"
    source = before + (f"{literal} == {name}" if reversed_ else f"{name} == {literal}")
    found = [q for q in quoted_values(source) if q.path == tuple(path)]
    assert [q.value for q in found] == [value]
    line, column = found[0].line, found[0].column
    assert source.split("\n")[line - 1][column - 1:].startswith(literal)


@given(value=st.from_regex(r"[a-z]{1,10}", fullmatch=True), shift=st.integers(0, 20))
def test_inside_a_message_the_position_is_counted_in_the_whole_template(value, shift):
    template = "x" * shift + "{'a' if data.grade == '" + value + "' else 'b'} and {{literal}}"
    (found,) = quoted_values(template, template=True)
    assert (found.path, found.value, found.line) == (("data", "grade"), value, 1)
    assert template[found.column - 1:].startswith(f"'{value}'")
