"""The commands that run instances in a store, as an operator uses them: start, fire, advance, show, list,
outbox, instances, migrate and held, with their text and JSON output and their refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import main
from engine.config.loader import bundled_config_dir

DATA = {"case_id": "C-0001", "team": "assessment_1", "service": "assessment", "lead_auditor": "TM-01",
        "peer_auditor": "IRO-02", "social_worker": "SW-01"}
GOOD = {"overall": "good", "domains": dict.fromkeys(
    ("voice_of_child", "assessments", "quality_of_plans", "management_oversight", "partnership_working", "embracing_diversity"), "good")}


@pytest.fixture
def qaflow(tmp_path):
    db = str(tmp_path / "ops.db")

    def run(*args: str, config: Path | None = None, stdin: str | None = None, db_option: bool = True):
        head = ["--color", "never"] + (["--config", str(config)] if config else [])
        tail = ["--db", db] if db_option else []
        return CliRunner().invoke(main, [*head, *args, *tail], input=stdin)

    return run


def started(qaflow, **extra):
    result = qaflow("start", "case_audit", "--actor", "QA-01", "--role", "qa_team", "--at", "2026-10-01T09:00",
                    "--data", json.dumps({**DATA, **extra}))
    assert result.exit_code == 0, result.output
    return result


def test_start_fire_show_and_list_in_text_and_json(qaflow):
    assert started(qaflow).stdout == "id: case_audit-000001\nstate: in_progress\n"
    fired = qaflow("--format", "json", "fire", "case_audit-000001", "submit_lead_audit", "--actor", "TM-01",
                   "--at", "2026-10-12T10:00", "--payload", json.dumps(GOOD))
    assert json.loads(fired.stdout) == {"id": "case_audit-000001", "state": "in_progress"}

    shown = qaflow("show", "case_audit-000001").stdout.splitlines()
    assert shown[0] == "case_audit-000001  case_audit v5  state: in_progress"
    assert "deadline lead_submission: met, due 2026-10-22" in shown
    assert "deadline peer_submission: open, due 2026-10-22" in shown
    assert any(line.strip().startswith("due Thu 22 Oct 2026") for line in shown)
    assert shown[-1] == "2026-10-12T10:00:00+01:00  TM-01  submit_lead_audit  in_progress -> in_progress"
    as_json = json.loads(qaflow("show", "case_audit-000001", "--format", "json").stdout)
    assert as_json["data"]["lead"]["overall"] == "good" and as_json["version"] == 5
    assert [d["name"] for d in as_json["deadlines"]] == ["lead_submission", "peer_submission"]

    listed = qaflow("list", "--workflow", "case_audit", "--state", "in_progress").stdout
    assert listed.startswith("case_audit-000001  case_audit v5  in_progress  2026-10-12T10:00:00+01:00")
    assert json.loads(qaflow("list", "--state", "final", "--format", "json").stdout) == []


def test_payload_and_data_from_a_file_or_standard_input(qaflow, tmp_path):
    data = tmp_path / "data.json"
    data.write_text("\ufeff" + json.dumps(DATA), encoding="utf-8")  # a BOM, as some editors write
    assert qaflow("start", "case_audit", "--actor", "QA-01", "--role", "qa_team", "--at", "2026-10-01T09:00",
                  "--data", f"@{data}").exit_code == 0
    fired = qaflow("fire", "case_audit-000001", "submit_lead_audit", "--actor", "TM-01", "--at", "2026-10-12T10:00",
                   "--payload", "-", stdin=json.dumps(GOOD))
    assert fired.exit_code == 0, fired.output


@pytest.mark.parametrize(("payload", "message"), [
    ("{", "--payload is not valid JSON: Expecting property name enclosed in double quotes at character 2"),
    ("[1, 2]", "--payload must be a JSON object"),
    ('{"notes": NaN}', "NaN is not a JSON number"),
    ('{"notes": Infinity}', "Infinity is not a JSON number"),
    ('{"notes": 1' + "0" * 5000 + "}", "a number in it has thousands of digits"),
    ('{"notes": ' + "[" * 5000 + "]" * 5000 + "}", "nested too deeply to read"),
    ("@/nowhere/payload.json", "cannot read '/nowhere/payload.json'"),
])
def test_unreadable_payloads_are_usage_errors_with_a_message(qaflow, payload, message):
    started(qaflow)
    result = qaflow("fire", "case_audit-000001", "record_file_review", "--actor", "TM-01", "--payload", payload)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "internal error" not in result.stderr


def test_a_payload_file_that_is_not_utf8_or_too_large(qaflow, tmp_path, monkeypatch):
    started(qaflow)
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'{"notes": "caf\xe9"}')
    result = qaflow("fire", "case_audit-000001", "record_file_review", "--actor", "TM-01", "--payload", f"@{latin}")
    assert result.exit_code == 2 and "is not UTF-8 text (byte 15)" in result.stderr
    from engine.cli import instances

    monkeypatch.setattr(instances, "MAX_JSON_BYTES", 10)
    result = qaflow("fire", "case_audit-000001", "record_file_review", "--actor", "TM-01", "--payload", f"@{latin}")
    assert result.exit_code == 2 and "is larger than" in result.stderr


def test_data_the_engine_refuses_is_exit_1_with_the_path(qaflow):
    started(qaflow)
    deep = '{"notes": ' + "[" * 100 + "]" * 100 + "}"
    result = qaflow("fire", "case_audit-000001", "record_file_review", "--actor", "TM-01", "--at", "2026-10-02T09:00", "--payload", deep)
    assert result.exit_code == 1 and "is nested more than 64 levels deep" in result.stderr
    nul = qaflow("fire", "case_audit-000001", "record_file_review", "--actor", "TM-01", "--at", "2026-10-02T09:00",
                 "--payload", '{"notes": "a\\u0000b"}')
    assert nul.exit_code == 1 and "payload.notes contains a NUL character" in nul.stderr


def test_advance_breaches_and_outbox_lists_and_acknowledges(qaflow):
    started(qaflow)
    advanced = qaflow("advance", "--to", "2026-10-25")
    assert advanced.stdout.splitlines() == [
        "2026-10-23T00:00:00+01:00  case_audit-000001  deadline lead_submission breached",
        "2026-10-23T00:00:00+01:00  case_audit-000001  deadline peer_submission breached",
    ]
    assert advanced.stderr.strip() == "2 fired"
    assert json.loads(qaflow("advance", "--to", "2026-10-26", "--format", "json").stdout) == []

    alerts = json.loads(qaflow("outbox", "--format", "json").stdout)
    names = [a["name"] for a in alerts]
    assert "audit_allocated" in names and "lead_audit_overdue" in names
    text = qaflow("outbox").stdout
    assert text.startswith("alert-000001  2026-10-01T09:00:00+01:00  audit_allocated -> TM-01, IRO-02\n    Case C-0001")
    ack = qaflow("outbox", "--ack", alerts[0]["id"])
    assert ack.exit_code == 0 and ack.stderr.strip() == "1 acknowledged"
    assert alerts[0]["id"] not in [a["id"] for a in json.loads(qaflow("outbox", "--format", "json").stdout)]
    everything = qaflow("outbox", "--all").stdout
    assert f"{alerts[0]['id']}  " in everything and "[acknowledged]" in everything
    unknown = qaflow("outbox", "--ack", "alert-999999")
    assert unknown.exit_code == 2 and "no alert 'alert-999999'" in unknown.stderr


def test_outdated_and_migrate_with_a_dry_run_first(qaflow, tmp_path):
    started(qaflow)
    newer = tmp_path / "newer"
    shutil.copytree(bundled_config_dir(), newer)
    wf = newer / "workflows" / "case_audit.yaml"
    wf.write_text(wf.read_text().replace("\nversion: 5\n", "\nversion: 6\n").replace(
        "title: Monthly collaborative case file audit", "title: Monthly case file audit"))
    outdated = qaflow("instances", "--outdated", config=newer)
    assert outdated.stdout == "case_audit-000001  case_audit  v5 (current v6)  in_progress\n"
    assert outdated.stderr.strip() == "1 outdated"
    assert json.loads(qaflow("instances", "--outdated", "--format", "json", config=newer).stdout)[0]["current_version"] == 6

    dry = qaflow("migrate", "case_audit-000001", "--actor", "QA-01", "--at", "2026-10-02T09:00", config=newer)
    assert dry.exit_code == 0 and dry.stdout == "case_audit-000001  v5 -> v6  would migrate\n"
    applied = qaflow("migrate", "case_audit-000001", "--apply", "--actor", "QA-01", "--at", "2026-10-02T09:00",
                     "--format", "json", config=newer)
    assert json.loads(applied.stdout)[0]["applied"] is True
    again = qaflow("migrate", "case_audit-000001", "--actor", "QA-01", "--at", "2026-10-02T09:00", config=newer)
    assert again.exit_code == 1 and "refused: already on version 6" in again.stdout


def test_reading_commands_refuse_a_store_that_does_not_exist(qaflow, tmp_path):
    for command in (["show", "case_audit-000001"], ["list"], ["outbox"], ["held"], ["advance", "--to", "2026-10-01"]):
        result = CliRunner().invoke(main, [*command, "--db", str(tmp_path / "typo.db")])
        assert result.exit_code == 2, command
        assert "no store at" in result.stderr
    assert not (tmp_path / "typo.db").exists()


def test_a_refused_fire_says_why_and_changes_nothing(qaflow):
    started(qaflow)
    before = qaflow("show", "case_audit-000001", "--format", "json").stdout
    refused = qaflow("fire", "case_audit-000001", "submit_lead_audit", "--actor", "IRO-02", "--at", "2026-10-02T09:00",
                     "--payload", json.dumps(GOOD))
    assert refused.exit_code == 1
    assert "IRO-02 may not fire 'submit_lead_audit' on case_audit-000001" in refused.stderr
    assert qaflow("show", "case_audit-000001", "--format", "json").stdout == before
    as_json = qaflow("--format", "json", "fire", "case_audit-000001", "nope", "--actor", "TM-01")
    assert as_json.exit_code == 1 and json.loads(as_json.stdout)["error"] == "UnknownTrigger"
