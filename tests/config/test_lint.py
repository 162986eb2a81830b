"""Semantic checks (engine/config/lint.py): graphs, overlapping transitions, deadlines, tables, references."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from types import MappingProxyType

import pytest

from engine.config import lint
from engine.config.lint import LINT_CODES, iter_table_problems, lint_config
from engine.config.loader import check_config
from engine.config.validate import detect_kind, validate_paths
from engine.definitions import ANY, DecisionTable, TableInput, TableRow
from engine.problems import Location

HERE = Path(__file__).resolve().parent
BASIC = HERE.parent / "fixtures" / "basic"
BUNDLED = HERE.parents[1] / "config"


def write_config(root: Path, workflows: dict[str, str], rules: str | None = None) -> Path:
    (root / "workflows").mkdir(parents=True)
    for name, given in workflows.items():
        text = textwrap.dedent(given)
        if not re.search(r"^start:", text, flags=re.M):  # who starts it is not what these tests are about
            text = text.rstrip("\n") + "\nstart: {roles: [system]}\n"
        (root / "workflows" / f"{name}.yaml").write_text(text)
    if rules is not None:
        (root / "rules").mkdir()
        (root / "rules" / "rules.yaml").write_text(textwrap.dedent(rules))
    return root


def codes(problems) -> list[tuple[str, int, int]]:
    return [(p.code, p.location.line, p.location.column) for p in problems]


SIMPLE = """\
workflow: simple
version: 1
roles: {qa: {}}
states:
  open: {initial: true}
  done: {terminal: true}
triggers:
  go: {roles: [qa]}
transitions:
  - trigger: go
    from: open
    to: done
"""


def test_every_code_lint_and_validate_yield_is_documented():
    from engine.config import validate

    source = Path(lint.__file__).read_text() + Path(validate.__file__).read_text()
    yielded = set(re.findall(r'"(?:error|warning)"(?: if [^,]+ else "(?:error|warning)")?, "([a-z-]+)"', source))
    yielded |= set(re.findall(r'"(?:error|warning)", "([a-z-]+)"', source))
    assert yielded, "the pattern found nothing"
    assert yielded <= set(LINT_CODES), sorted(yielded - set(LINT_CODES))


def test_bundled_and_fixture_configurations_have_no_lint_errors():
    for root in (BUNDLED, BASIC):
        definitions, problems = check_config(root)
        assert definitions is not None, "\n".join(map(str, problems))
    assert codes(validate_paths([BASIC])) == [("open-start", 1, 11), ("unused-trigger", 39, 3)]


def test_a_lint_error_stops_the_configuration_loading(tmp_path: Path):
    text = SIMPLE.replace("  done: {terminal: true}", "  stuck: {}\n  done: {terminal: true}").replace("    to: done", "    to: stuck")
    root = write_config(tmp_path, {"simple": text})
    definitions, problems = check_config(root)
    assert definitions is None
    assert [(p.code, p.severity) for p in problems if p.code != "unreachable-state"] == [("dead-end-state", "error")]
    assert "state 'stuck' is not terminal" in problems[0].message


STAR_OTHERWISE = """\
workflow: simple
version: 1
roles: {qa: {}}
states:
  open: {initial: true}
  review: {}
  done: {terminal: true}
  withdrawn: {terminal: true}
triggers:
  go: {roles: [qa]}
  withdraw: {roles: [qa]}
transitions:
  - trigger: go
    from: open
    to: review
  - trigger: go
    from: review
    to: done
  - trigger: withdraw
    from: review
    to: done
  - trigger: withdraw
    from: "*"
    to: withdrawn
"""


def test_star_after_specific_transitions_is_the_otherwise_pattern(tmp_path: Path):
    root = write_config(tmp_path, {"simple": STAR_OTHERWISE})
    definitions, problems = check_config(root)
    assert definitions is not None, "\n".join(map(str, problems))
    assert problems == []


def test_star_before_specific_transitions_shadows_them(tmp_path: Path):
    text = STAR_OTHERWISE.replace("""  - trigger: withdraw
    from: review
    to: done
  - trigger: withdraw
    from: "*"
    to: withdrawn
""", """  - trigger: withdraw
    from: "*"
    to: withdrawn
  - trigger: withdraw
    from: review
    to: done
""")
    root = write_config(tmp_path, {"simple": text})
    _, problems = check_config(root)
    assert codes(problems) == [("ambiguous-transitions", 22, 14)]
    assert "('from: \"*\"' means every state that is not terminal)" in problems[0].message


SAME_GUARD = """\
workflow: simple
version: 1
roles: {qa: {}}
states:
  open: {initial: true}
  done: {terminal: true}
triggers:
  go: {roles: [qa]}
transitions:
  - trigger: go
    from: open
    to: done
    when: >-
      payload.x == 1
  - trigger: go
    from: [open]
    to: open
    when: "payload.x  ==  1"
"""


def test_same_condition_written_differently_is_still_ambiguous(tmp_path: Path):
    root = write_config(tmp_path, {"simple": SAME_GUARD})
    _, problems = check_config(root)
    assert codes(problems) == [("ambiguous-transitions", 15, 14)]
    assert "transitions 1 (line 10) and 2 both handle trigger 'go' from 'open' with the same condition" in problems[0].message


def test_breach_transitions_without_started_deadline(tmp_path: Path):
    text = SIMPLE + "  - breach: late\n    from: open\n    to: done\ndeadlines:\n  late: {due: 3 days}\n"
    root = write_config(tmp_path, {"simple": text})
    _, problems = check_config(root)
    assert [p.code for p in problems] == ["breach-never-applies", "deadline-never-started"]


def table(hit: str, inputs: dict[str, tuple | None], rows: list[dict], default=None) -> DecisionTable:
    return DecisionTable(
        name="t",
        hit_policy=hit,
        inputs=tuple(TableInput(k, v) for k, v in inputs.items()),
        outputs=("o",),
        rows=tuple(
            TableRow(MappingProxyType({k: tuple(v) if isinstance(v, list) else v for k, v in r["when"].items()}),
                     MappingProxyType(r["then"]), Location("t.yaml", i + 10, 9))
            for i, r in enumerate(rows)
        ),
        default=MappingProxyType(default) if default is not None else None,
        location=Location("t.yaml", 2, 3),
    )


def test_gaps_are_named_by_their_values():
    t = table("first", {"overall": ("good", "bad"), "repeat": (True, False)},
              [{"when": {"overall": "bad"}, "then": {"o": 1}}, {"when": {"overall": "good", "repeat": True}, "then": {"o": 2}}])
    (problem,) = iter_table_problems(t)
    assert problem.code == "table-gap" and problem.severity == "error"
    assert "no row of table 't' matches overall=good, repeat=false;" in problem.message


def test_a_default_or_collect_policy_closes_every_gap():
    rows = [{"when": {"overall": "bad"}, "then": {"o": 1}}]
    assert list(iter_table_problems(table("first", {"overall": ("good", "bad")}, rows, default={"o": 0}))) == []
    assert list(iter_table_problems(table("collect", {"overall": ("good", "bad")}, rows))) == []


def test_many_gaps_are_counted_not_all_listed():
    t = table("first", {"a": tuple(range(10)), "b": tuple(range(10))}, [{"when": {"a": 0, "b": 0}, "then": {"o": 1}}])
    (problem,) = iter_table_problems(t)
    assert "(and 94 more combinations)" in problem.message


def test_overlap_without_declared_values_is_found_pairwise():
    t = table("unique", {"a": None, "b": None},
              [{"when": {"a": "x"}, "then": {"o": 1}}, {"when": {"a": ["x", "y"], "b": "z"}, "then": {"o": 2}}])
    (problem,) = iter_table_problems(t)
    assert problem.code == "table-overlap"
    assert problem.location.line == 11
    assert "rows 1 and 2 of table 't' both match a=x, b=z" in problem.message


def test_any_policy_allows_overlap_when_outputs_agree():
    t = table("any", {"a": ("x", "y")}, [{"when": {"a": "x"}, "then": {"o": 1}}, {"when": {"a": ANY}, "then": {"o": 1}}])
    assert list(iter_table_problems(t)) == []


def test_unreachable_row_without_declared_values():
    t = table("first", {"a": None}, [{"when": {"a": ANY}, "then": {"o": 1}}, {"when": {"a": "x"}, "then": {"o": 2}}])
    (problem,) = iter_table_problems(t)
    assert (problem.code, problem.severity, problem.location.line) == ("table-row-unreachable", "warning", 11)


def test_huge_tables_are_not_enumerated():
    t = table("first", {f"i{n}": tuple(range(20)) for n in range(6)}, [{"when": {"i0": 1}, "then": {"o": 1}}])
    assert list(iter_table_problems(t)) == []  # 64 million combinations: skipped, not hung


def test_lint_never_raises_even_on_a_broken_check(monkeypatch):
    definitions, _ = check_config(BASIC)

    def boom(*args, **kwargs):
        raise RuntimeError("bug")
        yield

    monkeypatch.setattr(lint, "iter_graph_problems", boom)
    problems = lint_config(definitions.workflows, definitions.tables)
    assert {p.code for p in problems} == {"internal-error"}


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("workflow: x\n", "workflow"),
        ("scenarios: []\n", "scenario"),
        ("tables: {}\n", "rules"),
        ("programme: q1\n", "programme"),
        ("something: else\n", None),
    ],
)
def test_kind_from_content(tmp_path: Path, text: str, kind):
    import yaml

    path = tmp_path / "file.yaml"
    path.write_text(text)
    assert detect_kind(path, yaml.safe_load(text)) == kind


def test_kind_from_folder(tmp_path: Path):
    for folder, kind in (("workflows", "workflow"), ("rules", "rules"), ("scenarios", "scenario"), ("programmes", "programme")):
        assert detect_kind(tmp_path / folder / "x.yaml", {"workflow": "x"}) == kind


def test_a_file_outside_any_configuration_replaces_the_workflow_with_its_id(tmp_path: Path):
    edited = tmp_path / "review.yaml"
    edited.write_text((BASIC / "workflows" / "review.yaml").read_text().replace("    to: escalated", "    to: escalatd"))
    problems = validate_paths([edited], BASIC)
    assert [p.code for p in problems if p.severity == "error"] == ["unknown-state"]
    assert all(p.location.file.endswith("review.yaml") and "fixtures" not in p.location.file for p in problems)


def test_missing_paths_and_plain_folders(tmp_path: Path):
    assert codes(validate_paths([tmp_path / "nope.yaml"], BASIC)) == [("no-such-file", 0, 0)]
    assert codes(validate_paths([tmp_path], BASIC)) == [("no-config", 0, 0)]
    (tmp_path / "notes.yaml").write_text("hello: world\n")
    assert codes(validate_paths([tmp_path / "notes.yaml"], BASIC)) == [("unknown-kind", 1, 1)]
