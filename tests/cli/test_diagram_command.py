"""qaflow diagram: Mermaid stateDiagram-v2 and Graphviz DOT from the engine's own model, with safe ids."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine import load_config
from engine.cli import main
from engine.diagram import _mermaid_text, edge_label, render, shorten

HERE = Path(__file__).resolve().parent
BASIC = HERE.parents[0] / "fixtures" / "basic"
BUNDLED = HERE.parents[1] / "config"

#: Words Mermaid's state-diagram grammar gives a meaning of its own.
RESERVED = {"end", "default", "state", "note", "direction", "class", "classdef", "style", "click", "as", "fork", "join",
            "choice", "concurrent", "hide", "scale", "left", "right", "of", "tb", "bt", "lr", "rl"}

AWKWARD = """\
workflow: awkward
version: 1
title: 'Names that "break" naive diagrams; #1'
roles: {qa: {}}
states:
  default: {initial: true, on_enter: [{start_deadline: note}]}
  state: {}
  end: {terminal: true}
  direction: {terminal: true}
  state__stays: {terminal: true}
triggers:
  class: {roles: [qa]}
  style: {roles: [qa]}
  hide: {roles: [qa]}
transitions:
  - trigger: class
    from: default
    to: state
  - trigger: style
    from: "*"
    to: direction
  - trigger: class
    from: state
    when: >-
      data.x == "a;b" and data.y != "#c"  # a comment with "quotes"
  - auto: true
    from: state
    to: end
    when: >-
      data.really_long_field_name_number_one == "something" and data.another_rather_long_one > 3
  - auto: true
    from: state
    to: direction
    when: data.x == "z"
    title: 'Give up; "no" #2'
  - breach: note
    from: [default, state]
    to: end
  - trigger: hide
    from: state
  - trigger: hide
    from: default
    to: state__stays
deadlines:
  note: {due: 10 working days, on_breach: [{alert: {to: [qa], message: "late"}}]}
"""


@pytest.fixture(scope="module")
def awkward(tmp_path_factory):
    root = tmp_path_factory.mktemp("awkward")
    (root / "workflows").mkdir()
    (root / "workflows" / "awkward.yaml").write_text(AWKWARD)
    return root


def parse_mermaid(text: str) -> dict:
    """A small reader of the subset we emit: declarations, choice points, edges, notes. Fails on anything else."""
    lines = text.splitlines()
    assert lines[0].startswith("%%") and lines[1] == "stateDiagram-v2"
    declared: dict[str, str] = {}
    choices: set[str] = set()
    edges: list[tuple[str, str, str]] = []
    notes: dict[str, list[str]] = {}
    in_note = None
    for line in lines[2:]:
        assert line.count('"') % 2 == 0, f"unbalanced quotes: {line!r}"
        if in_note is not None:
            if line.strip() == "end note":
                in_note = None
            else:
                assert "end note" not in line
                notes[in_note].append(line.strip())
            continue
        if m := re.fullmatch(r'    state "([^"]*)" as ([A-Za-z0-9_]+)', line):
            declared[m[2]] = m[1]
        elif m := re.fullmatch(r"    state ([A-Za-z0-9_]+) <<choice>>", line):
            choices.add(m[1])
        elif m := re.fullmatch(r"    (\[\*\]|[A-Za-z0-9_]+) --> (\[\*\]|[A-Za-z0-9_]+)(?: : ([^\n]+))?", line):
            edges.append((m[1], m[2], m[3] or ""))
        elif m := re.fullmatch(r"    note right of ([A-Za-z0-9_]+)", line):
            in_note = m[1]
            notes[in_note] = []
        else:
            raise AssertionError(f"unexpected line {line!r}")
    assert in_note is None, "a note is never closed"
    return {"declared": declared, "choices": choices, "edges": edges, "notes": notes}


def check_structure(text: str) -> dict:
    parsed = parse_mermaid(text)
    ids = set(parsed["declared"]) | parsed["choices"]
    assert len(ids) == len(parsed["declared"]) + len(parsed["choices"]), "a choice point reuses a state's id"
    for source, target, label in parsed["edges"]:
        assert source in ids | {"[*]"} and target in ids | {"[*]"}, (source, target)
        assert not any(ch in label for ch in '";#{}'), label
    loops = [source for source, target, _ in parsed["edges"] if source == target]
    assert len(loops) == len(set(loops)), "mermaid draws one loop per state: more must go through a choice point"
    for state_id in ids | set(parsed["notes"]):
        assert state_id in ids
        assert state_id.lower() not in RESERVED
        assert re.fullmatch(r"s_[A-Za-z0-9_]+", state_id)
    return parsed


def test_reserved_names_get_safe_ids_and_keep_their_labels(awkward):
    wf = load_config(awkward).workflows["awkward"]
    parsed = check_structure(render(wf))
    assert parsed["declared"] == {"s_default": "default", "s_state": "state", "s_end": "end", "s_direction": "direction",
                                  "s_state__stays": "state__stays"}
    edges = parsed["edges"]
    assert ("[*]", "s_default", "") in edges
    assert ("s_end", "[*]", "") in edges and ("s_direction", "[*]", "") in edges
    assert ("s_default", "s_state", "class") in edges
    assert ("s_default", "s_direction", "style") in edges and ("s_state", "s_direction", "style") in edges
    assert ("s_default", "s_end", "breach: note") in edges and ("s_state", "s_end", "breach: note") in edges
    assert ("s_state", "s_end", "auto") in edges  # the condition is left to --detail
    assert ("s_state", "s_direction", "Give up, 'no' no.2") in edges  # the transition's title, made safe
    assert parsed["notes"] == {"s_default": ["starts note: 10 working days"]}


def test_transitions_that_stay_share_a_choice_point_when_there_are_several(awkward):
    parsed = check_structure(render(load_config(awkward).workflows["awkward"]))
    # 'state' has two: they go through a choice point whose id does not take the state 'state__stays''s
    assert parsed["choices"] == {"s_state__stays_2"}
    assert [(s, t, label) for s, t, label in parsed["edges"] if t == "s_state__stays_2"] == [
        ("s_state", "s_state__stays_2", "class"), ("s_state", "s_state__stays_2", "hide")]
    assert [(s, t, label) for s, t, label in parsed["edges"] if s == "s_state__stays_2"] == [("s_state__stays_2", "s_state", "")]
    assert ("s_default", "s_state__stays", "hide") in parsed["edges"]
    # one loop is drawn as a loop
    one = render(load_config(BASIC).workflows["check"])
    assert "<<choice>>" not in one


def test_detail_adds_each_condition_without_its_comments(awkward):
    parsed = check_structure(render(load_config(awkward).workflows["awkward"], detail=True))
    condition = "data.really_long_field_name_number_one == 'something' and data.another_rather_long_one > 3"
    assert ("s_state", "s_end", f"auto [{condition}]") in parsed["edges"]
    assert ("s_state", "s_state__stays_2", "class [data.x == 'a,b' and data.y != 'no.c']") in parsed["edges"]
    assert ("s_default", "s_state", "class") in parsed["edges"]  # no condition, nothing added
    case_audit = load_config(BUNDLED).workflows["case_audit"]
    plain, detailed = check_structure(render(case_audit)), check_structure(render(case_audit, detail=True))
    assert [label for *_, label in plain["edges"] if label.startswith("record_file_review")] == ["record_file_review"] * 2
    assert [label for *_, label in detailed["edges"] if label.startswith("record_file_review")] == [
        "record_file_review [actor == data.lead_auditor]", "record_file_review [actor == data.peer_auditor]"]
    assert len(plain["edges"]) == len(detailed["edges"])


def transition_arrows(wf) -> list[str]:
    """One label per transition and state it leaves: what every diagram of ``wf`` must draw."""
    return [edge_label(t) for t in wf.transitions for _ in t.sources]


def test_every_transition_is_one_arrow():
    for root in (BUNDLED, BASIC):
        for wf in load_config(root).workflows.values():
            parsed = check_structure(render(wf))
            labelled = [label for _, _, label in parsed["edges"] if label]
            assert sorted(labelled) == sorted(transition_arrows(wf)), wf.id
            assert len(labelled) == sum(len(t.sources) for t in wf.transitions)
            # every choice point leads back to its one state, unlabelled
            for choice in parsed["choices"]:
                assert [(t, label) for s, t, label in parsed["edges"] if s == choice] == [(choice.rsplit("__stays", 1)[0], "")]
            dot = render(wf, "dot")
            assert len(re.findall(r' -> "s_[^"]*" \[label="[^"]+"', dot)) == len(labelled), wf.id


def test_every_bundled_and_fixture_workflow_is_well_formed():
    for root in (BUNDLED, BASIC):
        for wf in load_config(root).workflows.values():
            parsed = check_structure(render(wf))
            assert set(parsed["declared"].values()) == set(wf.states)
            dot = render(wf, "dot")
            assert dot.startswith(f'digraph "{wf.id}" {{') and dot.rstrip().endswith("}")
            assert dot.count("{") == dot.count("}")


def test_shorten_drops_comments_but_not_hashes_in_text():
    assert shorten('data.x == "#1"  # the first\n and data.y') == 'data.x == "#1" and data.y'
    assert shorten("a" * 100).endswith("…") and len(shorten("a" * 100)) == 40


def test_dot_escapes_quotes(awkward):
    dot = render(load_config(awkward).workflows["awkward"], "dot")
    assert r'Names that \"break\" naive diagrams; #1' in dot
    assert '"s_default" -> "s_end" [label="breach: note", style=dashed, color=red, fontcolor=red];' in dot
    assert '[shape=note, style="", fontsize=10, label="starts note: 10 working days"];' in dot


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_cli_prints_mermaid_by_default_and_dot_on_request():
    result = invoke("--config", str(BASIC), "diagram", "review")
    assert result.exit_code == 0, result.output
    check_structure(result.stdout)
    result = invoke("diagram", "review", "--config", str(BASIC), "--format", "dot")
    assert result.exit_code == 0 and result.stdout.startswith('digraph "review"')


def test_cli_writes_every_workflow_with_all(tmp_path: Path):
    result = invoke("--config", str(BASIC), "diagram", "--all", "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["check.mmd", "review.mmd"]
    assert "wrote " in result.stderr
    result = invoke("--config", str(BASIC), "diagram", "--all", "--out", str(tmp_path / "dots"), "--format", "dot")
    assert sorted(p.name for p in (tmp_path / "dots").iterdir()) == ["check.dot", "review.dot"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["diagram"], "give a WORKFLOW, or --all"),
        (["diagram", "--all"], "--all needs --out DIR"),
        (["diagram", "reveiw"], "did you mean 'review'?"),
    ],
)
def test_cli_usage_errors(args, message):
    result = invoke("--config", str(BASIC), *args)
    assert result.exit_code == 2
    assert message in result.stderr


# --------------------------------------------------------------------------- mermaid.js itself, when installed


def _mermaid_dir() -> Path | None:
    """A folder whose node_modules holds mermaid and jsdom: $QAFLOW_MERMAID_DIR, else the repository root."""
    if shutil.which("node") is None:
        return None
    for candidate in (os.environ.get("QAFLOW_MERMAID_DIR"), str(HERE.parents[1])):
        if candidate and all((Path(candidate) / "node_modules" / pkg / "package.json").is_file() for pkg in ("mermaid", "jsdom")):
            return Path(candidate)
    return None


# CI installs mermaid.js (see .ci/run), so there the check must run; elsewhere it is optional
@pytest.mark.skipif(
    _mermaid_dir() is None and not os.environ.get("CI"),
    reason="mermaid.js not installed (npm install --no-save mermaid@11 jsdom)",
)
def test_mermaid_js_draws_every_transition_of_every_diagram(awkward):
    assert _mermaid_dir() is not None, "mermaid.js is missing: .ci/run installs it into $QAFLOW_MERMAID_DIR"
    workflows = [wf for root in (BUNDLED, BASIC, awkward) for wf in load_config(root).workflows.values()]
    texts = [render(wf, detail=detail) for wf in workflows for detail in (False, True)]
    broken = "stateDiagram-v2\n    default --> end\n"  # what a naive renderer writes: must be refused
    # what a renderer that draws internal transitions as loops writes: mermaid keeps only the last loop
    loops = "stateDiagram-v2\n    [*] --> a\n    a --> a : one\n    a --> a : two\n    a --> b : three\n"
    with tempfile.TemporaryDirectory() as tmp:
        os.symlink(_mermaid_dir() / "node_modules", Path(tmp) / "node_modules")
        shutil.copy(HERE / "mermaid_check.mjs", tmp)
        run = subprocess.run(["node", str(Path(tmp) / "mermaid_check.mjs")], input=json.dumps(texts + [broken, loops]),
                             capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stderr
    *drawn, refused, lost = json.loads(run.stdout)
    assert isinstance(refused, str) and "Parse error" in refused
    assert sorted(lost) == ["", "three", "two"]  # the check sees arrows that the layout drops
    for text, arrows in zip(texts, drawn, strict=True):
        assert isinstance(arrows, list), arrows  # parsed and drawn, not an error message
        written = [label for _, _, label in parse_mermaid(text)["edges"]]
        assert len(arrows) == len(written), text.splitlines()[0]
        assert sorted(arrows) == sorted(written), [a for a in arrows if a not in written]
    for wf, arrows in zip(workflows, drawn[::2], strict=True):
        assert sorted(a for a in arrows if a) == sorted(map(_mermaid_text, transition_arrows(wf))), wf.id
        assert sum(1 for a in arrows if a) == sum(len(t.sources) for t in wf.transitions), wf.id
