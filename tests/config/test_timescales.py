"""Named timescales in the rules: deadlines in several workflows share one duration, changed in one place."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine import Engine, load_config

ROOT = Path(__file__).resolve().parent.parent.parent
BASIC = ROOT / "tests" / "fixtures" / "basic"

DRP = ("iro_escalation", "cp_chair_escalation")
STAGES = ("stage1_response", "stage2_response", "stage3_response", "stage4_response")


@pytest.fixture(scope="module")
def bundled():
    return load_config(ROOT / "config")


def test_deadlines_that_name_a_timescale_take_its_duration_and_source(bundled):
    stage = bundled.timescales["drp_stage"]
    assert stage.duration.text == "5 working days"
    assert stage.source == "local default: 5 working days per stage, as in councils' escalation protocols [LAP]"
    for wid in DRP:
        for name in STAGES:
            d = bundled.workflows[wid].deadlines[name]
            assert (d.timescale, d.duration, d.source) == ("drp_stage", stage.duration, stage.source)
    audit = bundled.workflows["case_audit"].deadlines
    assert audit["lead_submission"].timescale == audit["peer_submission"].timescale == "audit_submission"
    assert audit["case_system_record"].timescale == ""  # a plain 'due:'


def _raise_escalation(eng: Engine, wid: str, at: str) -> str:
    raiser_role = "iro_service" if wid == "iro_escalation" else "cp_chair_service"
    data = {"case_id": "C-0001", "raised_by": "R-01", "concern": "no plan", "concern_type": "other",
            "social_worker": "SW-01", "team_manager": "TM-01"}
    return eng.start(wid, data, actor="R-01", roles=[raiser_role], at=at).id


def test_changing_a_timescale_in_the_rules_moves_every_deadline_that_names_it(tmp_path):
    config = tmp_path / "config"
    shutil.copytree(ROOT / "config", config)
    rules = config / "rules" / "timescales.yaml"
    text = rules.read_text(encoding="utf-8")
    informal = "  drp_informal:\n    due: 5 working days\n"
    assert informal in text
    rules.write_text(text.replace(informal, "  drp_informal:\n    due: 10 working days\n"), encoding="utf-8")
    changed = load_config(config)
    for wid in DRP:
        assert changed.workflows[wid].deadlines["informal_resolution"].duration.text == "10 working days"
        eng = Engine(changed)
        iid = _raise_escalation(eng, wid, "2026-12-18T10:00")
        (informal_clock,) = [d for d in eng.get(iid).deadlines if d.name == "informal_resolution"]
        # 10 working days after Fri 18 Dec 2026: skipping Christmas, Boxing Day (observed 28 Dec) and New Year's Day
        assert informal_clock.due.isoformat() == "2027-01-06"
        eng.advance("2027-01-08")
        overdue = [a for a in eng.outbox() if a["name"] == "informal_overdue"]
        assert len(overdue) == 1 and "within 10 working days" in overdue[0]["message"]


def test_deadline_duration_is_readable_in_conditions_before_and_after_the_clock_starts(bundled):
    eng = Engine(bundled)
    iid = _raise_escalation(eng, "iro_escalation", "2026-12-18T10:00")
    from engine.runtime.context import _Deadlines
    from engine.runtime.unit import UnitOfWork

    inst = UnitOfWork(eng.store).get(iid)
    view = _Deadlines(inst, bundled.workflows["iro_escalation"])
    assert view["informal_resolution"]["duration"] == "5 working days"  # started with the instance
    assert view["stage2_response"] == {"status": "not_started", "due": None, "open": False, "late": False,
                                       "duration": "5 working days"}


def test_the_fixture_deadline_follows_its_timescale(tmp_path):
    config = tmp_path / "basic"
    shutil.copytree(BASIC, config)
    d = load_config(config).workflows["review"].deadlines["response"]
    assert (d.duration.text, d.timescale, d.source) == ("10 working days", "response_time", "local response standard")
    rules = config / "rules" / "rules.yaml"
    text = rules.read_text(encoding="utf-8")
    rules.write_text(text.replace("response_time: {due: 10 working days", "response_time: {due: 3 working days"), encoding="utf-8")
    eng = Engine(load_config(config))
    review = eng.start("review", {"case_id": "C-0001", "reviewer": "R-01"}, actor="QA-01", roles=["qa_team"], at="2026-12-18T09:00")
    (deadline,) = review.deadlines
    assert deadline.due.isoformat() == "2026-12-23"  # 3 working days after Fri 18 Dec 2026
