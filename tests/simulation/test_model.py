"""The behaviour model language: every mistake is reported with its file, line and column."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from engine.simulation.distributions import DistError, parse_dist, poisson
from engine.simulation.model import check_model

CONFIG = Path(__file__).resolve().parents[2] / "config"


def problems_for(definitions, tmp_path, text: str):
    path = tmp_path / "model.yaml"
    path.write_text(text, encoding="utf-8")
    model, problems = check_model(definitions, CONFIG, path)
    return model, [str(p) for p in problems]


BASE = """\
simulation: t
population:
  staff:
    - {role: qa_team, count: 1}
behaviours:
"""


def test_unknown_workflow_state_trigger_and_payload_field(definitions, tmp_path):
    model, problems = problems_for(definitions, tmp_path, BASE + """\
  - id: a
    workflow: case_audits
    state: in_progress
    actor: qa_team
    fire: record_consent
  - id: b
    workflow: case_audit
    state: in_progres
    actor: qa_team
    fire: record_consent
  - id: c
    workflow: case_audit
    state: in_progress
    actor: qa_team
    fire: record_consnet
  - id: d
    workflow: case_audit
    state: in_progress
    actor: qa_team
    fire: record_consent
    payload: {decision: granted, colour: blue}
""")
    assert model is None
    text = "\n".join(problems)
    assert "model.yaml:7:15: error: no workflow 'case_audits'" in text
    assert "model.yaml:13:12: error: workflow 'case_audit' has no state 'in_progres'" in text
    assert "model.yaml:20:11: error: workflow 'case_audit' has no trigger 'record_consnet'" in text
    assert "model.yaml:26:34: error: 'record_consent' takes no 'colour'" in text


def test_an_unknown_state_in_a_list_is_located_at_its_item(definitions, tmp_path):
    model, problems = problems_for(definitions, tmp_path, BASE + """\
  - id: a
    workflow: case_audit
    state: [in_progress, in_progres]
    actor: qa_team
    fire: record_consent
""")
    assert model is None
    assert any("model.yaml:8:26: error: workflow 'case_audit' has no state 'in_progres'" in p for p in problems), problems


def test_duplicate_id_is_located_after_a_behaviour_that_did_not_compile(definitions, tmp_path):
    # the first behaviour names no workflow, so it drops out: the duplicate is still the third one
    folder = tmp_path / "simulation"
    folder.mkdir()
    (folder / "model.yaml").write_text(BASE + """\
  - id: a
    workflow: case_audits
    state: in_progress
    actor: qa_team
    fire: record_consent
  - id: b
    workflow: case_audit
    state: in_progress
    actor: qa_team
    fire: record_consent
  - id: b
    workflow: case_audit
    state: in_progress
    actor: qa_team
    fire: record_consent
""", encoding="utf-8")
    _, problems = check_model(definitions, tmp_path)
    duplicates = [str(p) for p in problems if p.code == "duplicate-id"]
    assert len(duplicates) == 1, duplicates
    assert "model.yaml:16:9: error: behaviour 'b' is already defined at " in duplicates[0]
    assert duplicates[0].endswith("model.yaml:11:5 [duplicate-id]")


def test_bad_expression_role_and_distribution(definitions, tmp_path):
    model, problems = problems_for(definitions, tmp_path, BASE + """\
  - id: a
    workflow: case_audit
    state: in_progress
    when: data.consent = null
    actor: qa_team
    fire: record_consent
  - id: b
    workflow: case_audit
    state: in_progress
    actor: wizard
    fire: record_consent
  - id: c
    workflow: case_audit
    state: in_progress
    actor: qa_team
    fire: record_consent
    after: {working_days: {triangular: [5, 1, 3]}}
""")
    assert model is None
    text = "\n".join(problems)
    assert "model.yaml:9:11: error: invalid syntax near" in text and "[expression-" in text
    assert "model.yaml:15:12: error: nobody in the population has the role 'wizard'" in text
    assert "model.yaml:22:27: error: not a distribution: triangular [5.0, 1.0, 3.0]: expected low <= mode <= high" in text


def test_schema_errors_are_located(definitions, tmp_path):
    model, problems = problems_for(definitions, tmp_path, BASE + """\
  - id: a
    workflow: case_audit
    state: in_progress
    fire: record_consent
    actor: qa_team
    after: {weeks: 2}
""")
    assert model is None
    assert any("model.yaml:11:" in p and "unknown key 'weeks'" in p for p in problems), problems


def test_warnings_for_rules_the_engine_would_refuse(definitions, tmp_path):
    model, problems = problems_for(definitions, tmp_path, BASE + """\
  - id: a
    workflow: case_audit
    state: final
    actor: qa_team
    fire: submit_lead_audit
""")
    assert model is not None  # warnings only
    text = "\n".join(problems)
    assert "warning: 'submit_lead_audit' is not accepted in final" in text
    assert "warning: 'submit_lead_audit' needs one of the roles lead_auditor; this actor has qa_team" in text
    assert "warning: 'submit_lead_audit' needs 'overall'" in text


def test_extends_config_replaces_by_id_and_disables(definitions, tmp_path):
    model, problems = problems_for(definitions, tmp_path, """\
extends: config
simulation: slower_social_workers
disable: [qa_chases_consent]
behaviours:
  - id: family_consent
    workflow: case_audit
    state: in_progress
    when: data.consent == null
    actor: social_worker
    fire: record_consent
    after: {working_days: {uniform: [10, 20]}}
    payload: {decision: granted}
""")
    assert problems == []
    ids = [r.id for r in model.rules]
    assert "qa_chases_consent" not in ids and ids.count("family_consent") == 1
    rule = next(r for r in model.rules if r.id == "family_consent")
    assert rule.options[0].delay.dist.kind == "uniform"
    assert model.id == "slower_social_workers"
    assert len(model.population.staff) > 10  # the population of the configuration's model


def test_distributions_and_poisson():
    rng = random.Random(1)
    for spec in (3, {"uniform": [1, 2]}, {"triangular": [1, 2, 5]}, {"lognormal": {"median": 4, "sigma": 0.5}, "max": 9},
                 {"exponential": {"mean": 2}}, {"normal": {"mean": 5, "sd": 1}}):
        d = parse_dist(spec)
        values = [d.sample(rng) for _ in range(200)]
        assert all(v >= 0 for v in values)
    assert max(parse_dist({"lognormal": {"median": 4, "sigma": 2}, "max": 9}).sample(rng) for _ in range(500)) <= 9
    counts = [poisson(rng, 3.0) for _ in range(3000)]
    assert abs(sum(counts) / len(counts) - 3.0) < 0.15
    assert abs(sum(poisson(rng, 80.0) for _ in range(500)) / 500 - 80.0) < 2.0
    with pytest.raises(DistError, match="the second number must not be smaller than the first"):
        parse_dist({"uniform": [3, 1]})
