"""Trust boundaries: what a caller may assert, who may start what, and what the history records.

Each test replays a finding of the adversarial review (F1, F3, F4, F10, F11) through the API and the
command line, on the bundled configuration, and asserts the refusal or the corrected behaviour.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from engine import (
    DataInvalid,
    Engine,
    OutOfOrder,
    RoleRefused,
    UsageError,
    load_config,
)
from engine.cli import main
from engine.config.loader import bundled_config_dir
from engine.store.sqlite import SQLiteStore

DATA = {"case_id": "C-1", "team": "t1", "service": "assessment", "lead_auditor": "TM-01", "peer_auditor": "IRO-02"}
DOMAINS = ("voice_of_child", "assessments", "quality_of_plans", "management_oversight", "partnership_working", "embracing_diversity")
GOOD = {"overall": "good", "domains": dict.fromkeys(DOMAINS, "good")}
REQUIRES_IMPROVEMENT = {"overall": "requires_improvement", "domains": dict.fromkeys(DOMAINS, "requires_improvement")}
QA = {"actor": "QA-01", "roles": ["qa_team"]}


@pytest.fixture(scope="module")
def definitions():
    return load_config(bundled_config_dir())


@pytest.fixture(params=["memory", "sqlite"])
def eng(request, definitions, tmp_path):
    if request.param == "memory":
        yield Engine(definitions)
        return
    store = SQLiteStore(tmp_path / "trust.db")
    yield Engine(definitions, store)
    store.close()


def cli(*args: str):
    return CliRunner().invoke(main, ["--color", "never", *args], catch_exceptions=False)


def in_moderation(eng: Engine):
    audit = eng.start("case_audit", {**DATA, "social_worker": "SW-01"}, at="2026-10-01T09:00", **QA)
    eng.fire(audit.id, "record_consent", {"decision": "granted"}, actor="SW-01", at="2026-10-02T09:00")
    eng.fire(audit.id, "submit_lead_audit", GOOD, actor="TM-01", at="2026-10-05T09:00")
    eng.fire(audit.id, "record_worker_meeting", {"held_on": "2026-10-06"}, actor="IRO-02", at="2026-10-06T09:00")
    views = {"child": {"obtained": True, "summary": "Feels listened to"}, "parents_carers": {"obtained": True, "summary": "Supported"}}
    eng.fire(audit.id, "record_views", views, actor="IRO-02", at="2026-10-06T10:00")
    eng.fire(audit.id, "submit_peer_audit", REQUIRES_IMPROVEMENT, actor="IRO-02", at="2026-10-06T11:00")
    assert eng.get(audit.id).state == "in_moderation"
    return audit.id


# --------------------------------------------------------------------------- F1 the reserved role


def test_a_caller_cannot_claim_the_system_role_to_fake_a_moderation(eng):
    audit = in_moderation(eng)
    before = eng.history(audit)
    fake = {"overall": "outstanding", "domains": {}, "action_plan": [], "moderator": "mallory@evil.example"}
    for roles in (["system"], ["qa_team", "system"]):
        with pytest.raises(RoleRefused, match="reserved for the engine"):
            eng.fire(audit, "moderation_complete", fake, actor="mallory", roles=roles, at="2026-10-07T09:00")
    # the trigger only the engine fires is refused to every role a caller can hold
    with pytest.raises(RoleRefused, match="needs the role system"):
        eng.fire(audit, "moderation_complete", fake, actor="QA-01", roles=["qa_team", "head_of_service"], at="2026-10-07T09:00")
    assert eng.history(audit) == before
    assert not [a for a in eng.outbox() if any(r.get("person") == "mallory@evil.example" for r in a["recipients"])]


def test_the_reserved_role_is_refused_at_start_schedule_and_in_the_worklist(eng):
    with pytest.raises(RoleRefused, match="reserved"):
        eng.start("case_audit", DATA, actor="QA-01", roles=["system"], at="2026-10-01T09:00")
    with pytest.raises(RoleRefused, match="reserved"):
        eng.schedule_start("case_audit", DATA, actor="QA-01", roles=["qa_team", "system"], at="2026-10-02T09:00")
    audit = in_moderation(eng)
    with pytest.raises(RoleRefused, match="reserved"):
        eng.available_triggers(audit, actor="QA-01", roles=["system"])
    assert "moderation_complete" not in eng.available_triggers(audit, actor="QA-01", roles=["qa_team"])


def test_the_real_moderation_still_completes_the_audit(eng):
    audit = in_moderation(eng)
    (moderation,) = eng.get(audit).children
    eng.fire(moderation, "allocate_moderator", {"moderator": "HOS-01", "moderator_role": "head_of_service"}, **QA, at="2026-10-07T09:00")
    plan = [{"action": "Update the plan", "owner": "TM-01", "due_by": "2026-11-20"}]
    eng.fire(moderation, "record_moderation", {**GOOD, "action_plan": plan}, actor="HOS-01", roles=["head_of_service"],
             at="2026-10-20T09:00")
    assert eng.get(audit).state == "final"
    assert [h["actor"] for h in eng.history(audit) if h["trigger"] == "moderation_complete"] == [f"system:{moderation}"]


def test_the_engine_s_own_actor_names_cannot_be_used(eng):
    for actor in ("system", "system:moderation-000001"):
        with pytest.raises(UsageError, match="reserved for the engine"):
            eng.start("case_audit", DATA, actor=actor, roles=["qa_team"], at="2026-10-01T09:00")


def test_the_cli_refuses_role_system_with_exit_1(tmp_path):
    db = str(tmp_path / "f1.db")
    data = {**DATA}
    assert cli("start", "case_audit", "--db", db, "--actor", "QA-01", "--role", "qa_team", "--at", "2026-10-01T09:00",
               "--data", json.dumps(data)).exit_code == 0
    fake = {"overall": "outstanding", "domains": {}, "action_plan": [], "moderator": "mallory@evil.example"}
    result = cli("fire", "case_audit-000001", "moderation_complete", "--db", db, "--actor", "mallory", "--role", "system",
                 "--at", "2026-10-02T09:00", "--payload", json.dumps(fake))
    assert result.exit_code == 1
    assert "reserved for the engine" in result.stderr


def test_a_signal_payload_with_extra_fields_is_refused(definitions):
    trig = definitions.workflows["case_audit"].triggers["moderation_complete"]
    assert trig.payload_schema["additionalProperties"] is False


# --------------------------------------------------------------------------- F3 who starts, and with what


def test_start_needs_one_of_the_workflow_s_start_roles(eng):
    with pytest.raises(RoleRefused, match="ANYONE may not start case_audit: it needs the role qa_team"):
        eng.start("case_audit", DATA, actor="ANYONE", at="2026-10-01T09:00")
    with pytest.raises(RoleRefused, match="only the engine starts it"):
        eng.start("moderation", {"case_id": "C-1", "allocated_on": "2026-10-01", "lead": GOOD, "peer": GOOD}, **QA, at="2026-10-01T09:00")
    assert eng.instances() == []


def test_start_data_cannot_fill_the_fields_the_workflow_owns(eng):
    with pytest.raises(DataInvalid, match="'final', 'lead', 'peer' are set by the workflow itself") as err:
        eng.start("case_audit", {**DATA, "lead": GOOD, "peer": GOOD, "final": GOOD}, at="2026-10-01T09:00", **QA)
    assert err.value.details["problems"] == ["'final' is set by the workflow", "'lead' is set by the workflow", "'peer' is set by the workflow"]
    assert eng.instances() == []


def test_a_parent_workflow_still_starts_its_children_with_the_data_they_own(eng):
    audit = in_moderation(eng)
    (moderation,) = eng.get(audit).children
    assert eng.get(moderation).data["lead"]["overall"] == "good"


def test_the_start_entry_records_what_the_starter_gave_not_what_the_workflow_set(eng):
    audit = eng.start("case_audit", DATA, at="2026-10-01T09:00", **QA)
    first = eng.history(audit.id)[0]
    assert first["trigger"] == "(start)" and first["payload"] == DATA
    assert "allocated_on" in eng.get(audit.id).data  # set by on_enter in the same call


def test_schedule_start_is_checked_when_it_is_made(eng):
    with pytest.raises(RoleRefused, match="may not start case_audit"):
        eng.schedule_start("case_audit", DATA, actor="ANYONE", at="2026-10-02T09:00")
    with pytest.raises(DataInvalid, match="set by the workflow"):
        eng.schedule_start("case_audit", {**DATA, "final": GOOD}, at="2026-10-02T09:00", **QA)
    eng.schedule_start("case_audit", DATA, at="2026-10-02T09:00", **QA)
    (occurrence,) = eng.advance("2026-10-03")
    assert occurrence.kind == "start" and occurrence.error is None


def test_a_caller_asserting_a_bound_role_s_name_gains_nothing(eng):
    audit = eng.start("case_audit", DATA, at="2026-10-01T09:00", **QA)
    with pytest.raises(RoleRefused, match=r"the person named in data\.lead_auditor, here 'TM-01'"):
        eng.fire(audit.id, "submit_lead_audit", GOOD, actor="QA-01", roles=["lead_auditor"], at="2026-10-02T09:00")


def test_the_cli_replay_of_an_unguarded_start(tmp_path):
    db = str(tmp_path / "f2.db")
    data = {**DATA, "lead": GOOD, "peer": GOOD}
    result = cli("start", "case_audit", "--db", db, "--actor", "ANYONE", "--at", "2026-10-01T09:00", "--data", json.dumps(data))
    assert result.exit_code == 1 and "may not start case_audit" in result.stderr
    result = cli("start", "case_audit", "--db", db, "--actor", "QA-01", "--role", "qa_team", "--at", "2026-10-01T09:00",
                 "--data", json.dumps(data))
    assert result.exit_code == 1 and "set by the workflow itself" in result.stderr


# --------------------------------------------------------------------------- F4 identity


@pytest.mark.parametrize("actor", [None, "", "   ", 7])
def test_an_empty_or_missing_actor_is_refused_and_gains_no_bound_role(eng, actor):
    audit = eng.start("case_audit", DATA, at="2026-10-01T09:00", **QA)  # social_worker is not named
    before = eng.history(audit.id)
    with pytest.raises(UsageError, match="actor"):
        eng.fire(audit.id, "record_consent", {"decision": "granted"}, actor=actor, at="2026-10-02T09:00")
    assert eng.history(audit.id) == before


def test_no_bound_role_is_held_through_an_empty_field(definitions):
    wf = definitions.workflows["case_audit"]
    data = {**DATA, "social_worker": None, "service_manager": ""}
    assert Engine.effective_roles(wf, data, "", []) == frozenset()
    assert "social_worker" not in Engine.effective_roles(wf, data, "SW-01", [])
    assert Engine.effective_roles(wf, data, "TM-01", ["qa_team"]) == {"qa_team", "lead_auditor"}


# --------------------------------------------------------------------------- F10 time runs forwards


def test_an_event_dated_before_the_last_one_needs_a_reason(eng):
    audit = eng.start("case_audit", DATA, at="2026-10-01T09:00", **QA)
    before = eng.history(audit.id)
    with pytest.raises(OutOfOrder, match="is before the last event recorded on case_audit-000001"):
        eng.fire(audit.id, "record_file_review", {"notes": "x"}, actor="TM-01", at="2019-01-01T00:00")
    assert eng.history(audit.id) == before
    with pytest.raises(OutOfOrder):  # a blank reason is no reason
        eng.fire(audit.id, "record_file_review", {"notes": "x"}, actor="TM-01", at="2019-01-01T00:00", backdate_reason="  ")
    view = eng.fire(audit.id, "record_file_review", {"notes": "x"}, actor="TM-01", at="2026-09-30T16:00",
                    backdate_reason="entered from the paper record after the system outage")
    last = eng.history(audit.id)[-1]
    assert last["at"] == "2026-09-30T16:00:00+01:00"
    assert last["backdated"] == {"reason": "entered from the paper record after the system outage",
                                 "last_event": "2026-10-01T09:00:00+01:00"}
    assert view.updated_at.isoformat() == "2026-10-01T09:00:00+01:00"  # the instance's clock does not go back


def test_a_few_minutes_of_clock_difference_between_hosts_is_not_backdating(eng):
    audit = eng.start("case_audit", DATA, at="2026-10-01T09:00", **QA)
    eng.fire(audit.id, "record_file_review", {"notes": "x"}, actor="TM-01", at="2026-10-01T08:57")
    assert "backdated" not in eng.history(audit.id)[-1]


@pytest.mark.parametrize("text", ["2027-03-28T01:30", "2026-10-25T01:30"])
def test_a_local_time_that_does_not_exist_or_happens_twice_is_refused(eng, text):
    with pytest.raises(UsageError, match="Europe/London"):
        eng.start("case_audit", DATA, at=text, **QA)
    assert eng.start("case_audit", DATA, at=text + "+00:00", **QA).state == "in_progress"


@pytest.mark.parametrize("text", ["0001-01-01T00:00+00:00", "0001-01-01T00:30+01:00", "9999-12-31T23:59-12:00", "1700-01-01"])
def test_times_outside_the_years_qaflow_works_with_are_a_usage_error(eng, text):
    with pytest.raises(UsageError, match="outside the years"):
        eng.start("case_audit", DATA, at=text, **QA)
    with pytest.raises(UsageError, match="outside the years"):
        eng.advance(text)


def test_the_cli_refuses_a_backdated_fire_with_exit_1_and_takes_a_reason(tmp_path):
    db = str(tmp_path / "f10.db")
    cli("start", "case_audit", "--db", db, "--actor", "QA-01", "--role", "qa_team", "--at", "2026-10-01T09:00", "--data", json.dumps(DATA))
    args = ["fire", "case_audit-000001", "record_file_review", "--db", db, "--actor", "TM-01", "--payload", '{"notes": "x"}', "--at", "2019-01-01T00:00"]
    refused = cli(*args)
    assert refused.exit_code == 1 and "before the last event" in refused.stderr
    accepted = cli(*args, "--backdate-reason", "typed in from the 2019 paper file")
    assert accepted.exit_code == 0, accepted.output


# --------------------------------------------------------------------------- F11 forged lines


@pytest.mark.parametrize("bad", ["QA-01\n2026-10-02  QA-DIRECTOR  approve_everything", "QA\x1b[2J", "QA\u2028x", "x" * 201])
def test_ids_with_control_characters_or_too_long_are_refused(eng, bad):
    with pytest.raises(UsageError):
        eng.start("case_audit", DATA, actor=bad, roles=["qa_team"], at="2026-10-01T09:00")
    audit = eng.start("case_audit", DATA, at="2026-10-01T09:00", **QA)
    with pytest.raises(UsageError):
        eng.fire(audit.id, "record_file_review", {"notes": "x"}, actor="TM-01", roles=[bad], at="2026-10-02T09:00")
    with pytest.raises(UsageError):
        eng.fire(audit.id, "record_file_review", {"notes": "x"}, actor="TM-01", at="2026-10-02T09:00", request_id=bad)


def test_text_output_shows_control_characters_escaped_so_lines_cannot_be_forged(tmp_path):
    db = str(tmp_path / "f11.db")
    cli("start", "case_audit", "--db", db, "--actor", "QA-01", "--role", "qa_team", "--at", "2026-10-01T09:00", "--data", json.dumps(DATA))
    notes = "fine\n2026-10-02T09:00:00+01:00  QA-DIRECTOR  approve_everything  in_progress -> completed"
    cli("fire", "case_audit-000001", "record_file_review", "--db", db, "--actor", "TM-01", "--at", "2026-10-02T09:00",
        "--payload", json.dumps({"notes": notes}))
    shown = cli("show", "case_audit-000001", "--db", db).stdout
    assert not any(line.startswith("2026-10-02T09:00:00+01:00  QA-DIRECTOR") for line in shown.splitlines())
    assert "\\n2026-10-02T09:00:00+01:00  QA-DIRECTOR" in shown  # the text is there, escaped
