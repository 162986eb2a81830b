"""What a host (or an operator) asks from the command line: list by data field and due date a page at a time,
worklist, and outbox claims with leases, in text and JSON."""

from __future__ import annotations

import gc
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from engine.cli import main


def runner(db: Path) -> Callable[..., Any]:
    def run(*args: str) -> Any:
        return CliRunner().invoke(main, ["--color", "never", *args, "--db", str(db)])

    return run


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """A store with five audits (teams 1/0/1/0/1, lead auditors TM-01/TM-00/...), made once for the module."""
    db = tmp_path_factory.mktemp("seeded") / "ops.db"
    run = runner(db)
    for k in range(1, 6):
        data = {"case_id": f"C-{k}", "team": f"assessment_{k % 2}", "service": "assessment", "lead_auditor": f"TM-0{k % 2}",
                "peer_auditor": "IRO-02", "social_worker": "SW-01"}
        result = run("start", "case_audit", "--actor", "QA-01", "--role", "qa_team", "--at", f"2026-10-0{k}T09:00", "--data", json.dumps(data))
        assert result.exit_code == 0, result.output
    gc.collect()  # the commands' stores close, and SQLite folds its write-ahead log into the file
    return db


@pytest.fixture
def qaflow(seeded, tmp_path):
    """Each test runs on its own copy of the seeded store."""
    for part in seeded.parent.glob(seeded.name + "*"):
        shutil.copy(part, tmp_path / part.name)
    return runner(tmp_path / seeded.name)


def test_list_keeps_its_format_without_the_new_options(qaflow):
    listed = qaflow("list").stdout.splitlines()
    assert len(listed) == 5 and listed[0] == "case_audit-000001  case_audit v5  in_progress  2026-10-01T09:00:00+01:00"
    assert isinstance(json.loads(qaflow("list", "--format", "json").stdout), list)


def test_list_by_data_field_and_due_date(qaflow):
    team_1 = qaflow("list", "--where", "team=assessment_1")
    assert [line.split()[0] for line in team_1.stdout.splitlines()] == ["case_audit-000001", "case_audit-000003", "case_audit-000005"]
    assert team_1.stderr == ""  # not paged: every match, as before
    both = qaflow("list", "--where", "team=assessment_1", "--where", "lead_auditor=TM-01", "--format", "json")
    assert [r["id"] for r in json.loads(both.stdout)] == ["case_audit-000001", "case_audit-000003", "case_audit-000005"]
    either = qaflow("list", "--where", "team=assessment_0", "--where", "team=nowhere", "--format", "json")
    assert [r["id"] for r in json.loads(either.stdout)] == ["case_audit-000002", "case_audit-000004"]
    as_list = qaflow("list", "--where", 'team:=["assessment_0", "nowhere"]', "--format", "json")
    assert as_list.stdout == either.stdout
    assert json.loads(qaflow("list", "--where", "team:=1", "--format", "json").stdout) == []  # the number 1, not text
    # allocated 1-5 Oct, due three weeks on (22-26 Oct): due by the start of 24 Oct means due 22 or 23 Oct
    due = qaflow("list", "--due-before", "2026-10-24", "--format", "json")
    assert [r["id"] for r in json.loads(due.stdout)] == ["case_audit-000001", "case_audit-000002"]


def test_list_a_page_at_a_time(qaflow):
    first = qaflow("list", "--limit", "2")
    assert [line.split()[0] for line in first.stdout.splitlines()] == ["case_audit-000001", "case_audit-000002"]
    cursor = first.stderr.split("--after ")[1].strip()
    second = json.loads(qaflow("list", "--limit", "2", "--after", cursor, "--format", "json").stdout)
    assert [r["id"] for r in second["items"]] == ["case_audit-000003", "case_audit-000004"]
    last = json.loads(qaflow("list", "--limit", "2", "--after", second["next"], "--format", "json").stdout)
    assert [r["id"] for r in last["items"]] == ["case_audit-000005"] and last["next"] is None
    assert qaflow("list", "--limit", "2", "--after", second["next"]).stderr.strip() == "1 instances"


@pytest.mark.parametrize(("args", "message"), [
    (["--where", "team"], "write FIELD=TEXT"),
    (["--where", "=x"], "write FIELD=TEXT"),
    (["--where", "team:=[1"], "is not a JSON value"),
    (["--where", "team:=NaN"], "is not a JSON value"),
    (["--where", "a.b=1"], "is not a data field name"),
    (["--where", 'team:={"a": 1}'], "can be compared with text, numbers"),
    (["--after", "nonsense"], "is not a cursor"),
    (["--due-before", "tomorrow"], "is not an ISO 8601 date"),
    (["--limit", "0"], "0 is not in the range"),
])
def test_malformed_list_options_are_usage_errors(qaflow, args, message):
    result = qaflow("list", *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "internal error" not in result.stderr


def test_worklist_in_text_and_json(qaflow):
    lead = qaflow("worklist", "--actor", "TM-01")
    assert lead.exit_code == 0, lead.output
    assert lead.stdout.splitlines()[0] == ("case_audit-000001  case_audit  in_progress  record_file_review, record_auditor_discussion, "
                                           "submit_lead_audit  due 2026-10-22 (lead_submission)")
    assert [line.split()[0] for line in lead.stdout.splitlines()] == ["case_audit-000001", "case_audit-000003", "case_audit-000005"]
    assert lead.stderr.strip() == "3 instances with something to fire"

    paged = json.loads(qaflow("worklist", "--actor", "IRO-02", "--limit", "2", "--format", "json").stdout)
    assert [i["id"] for i in paged["items"]] == ["case_audit-000001", "case_audit-000002"]
    assert {"name": "submit_peer_audit", "title": "Submit the peer audit"} in paged["items"][0]["triggers"]
    assert paged["items"][0]["deadline"] == "lead_submission" and paged["items"][0]["due"] == "2026-10-22"
    rest = json.loads(qaflow("worklist", "--actor", "IRO-02", "--after", paged["next"], "--format", "json").stdout)
    assert [i["id"] for i in rest["items"]] == ["case_audit-000003", "case_audit-000004", "case_audit-000005"] and rest["next"] is None

    narrowed = qaflow("worklist", "--actor", "TM-01", "--where", "team=assessment_1", "--due-before", "2026-10-24", "--format", "json")
    assert [i["id"] for i in json.loads(narrowed.stdout)["items"]] == ["case_audit-000001"]
    assert qaflow("worklist", "--actor", "nobody").stdout == ""


def test_worklist_refuses_the_system_role_and_needs_an_actor(qaflow):
    refused = qaflow("worklist", "--actor", "QA-01", "--role", "system")
    assert refused.exit_code == 1 and "reserved for the engine itself" in refused.stderr
    assert qaflow("worklist").exit_code == 2


def test_outbox_claims_with_a_lease_and_acknowledges_by_worker(qaflow):
    waiting = json.loads(qaflow("outbox", "--format", "json").stdout)
    claimed = qaflow("outbox", "--claim", "2", "--worker", "mailer-1")
    assert claimed.exit_code == 0, claimed.output
    lines = claimed.stdout.splitlines()
    assert lines[0].startswith(f"{waiting[0]['id']}  2026-10-01T09:00:00+01:00  audit_allocated -> TM-01, IRO-02  [leased to mailer-1 until ")
    assert lines[0].endswith(", claim 1]") and claimed.stderr.strip() == "2 claimed by mailer-1"
    other = json.loads(qaflow("outbox", "--claim", "1", "--worker", "mailer-2", "--lease", "30", "--format", "json").stdout)
    assert [a["id"] for a in other] == [waiting[2]["id"]]  # the first two are under mailer-1's lease
    assert other[0]["lease"]["worker"] == "mailer-2" and other[0]["lease"]["claims"] == 1

    ack = qaflow("outbox", "--ack", waiting[0]["id"], "--worker", "mailer-1")
    assert ack.exit_code == 0 and ack.stderr.strip() == "1 acknowledged"
    everything = {a["id"]: a for a in json.loads(qaflow("outbox", "--all", "--format", "json").stdout)}
    assert everything[waiting[0]["id"]]["acknowledged_by"] == "mailer-1"
    assert len(json.loads(qaflow("outbox", "--format", "json").stdout)) == len(waiting) - 1  # leased ones are still listed


@pytest.mark.parametrize(("args", "message"), [
    (["--claim", "3"], "--claim needs --worker"),
    (["--claim", "3", "--worker", "w", "--ack", "alert-000001"], "--claim and --ack go in separate calls"),
    (["--claim", "0", "--worker", "w"], "0 is not in the range"),
    (["--claim", "1", "--worker", "w", "--lease", "0"], "0.0 is not in the range"),
    (["--claim", "1", "--worker", " "], "the worker must not be empty"),
])
def test_malformed_claims_are_usage_errors(qaflow, args, message):
    result = qaflow("outbox", *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
