"""Availability (F2): one item advance cannot fire is set aside; everything else keeps firing, in order.

A configuration change that ``qaflow validate`` accepts on its own (a timescale renamed while older
versions run, a workflow removed while a start is scheduled) used to stop every later ``advance``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine import Engine, load_config
from engine.cli import main
from engine.config.loader import bundled_config_dir
from engine.runtime.preflight import check_against_store
from engine.store.memory import MemoryStore
from engine.store.sqlite import SQLiteStore

DATA = {"case_id": "C-1", "team": "t1", "service": "assessment", "lead_auditor": "TM-01", "peer_auditor": "IRO-02"}
QA = {"actor": "QA-01", "roles": ["qa_team"]}
SURVEY = {"case_id": "C-1", "service": "assessment", "point": "case_closure", "respondent": "child"}


@pytest.fixture(scope="module")
def configs(tmp_path_factory):
    """The bundled configuration (A), the same with a timescale renamed and case_audit's version raised (B),
    and the bundled one without feedback_survey.yaml (C)."""
    root = tmp_path_factory.mktemp("configs")
    a, b, c = root / "a", root / "b", root / "c"
    shutil.copytree(bundled_config_dir(), a)
    shutil.copytree(a, b)
    rules = b / "rules" / "timescales.yaml"
    rules.write_text(rules.read_text().replace("\n  audit_submission:", "\n  audit_submission_v2:"))
    wf = b / "workflows" / "case_audit.yaml"
    text = wf.read_text().replace("timescale: audit_submission", "timescale: audit_submission_v2")
    version = int(text.split("\nversion: ", 1)[1].split("\n", 1)[0])
    wf.write_text(text.replace(f"\nversion: {version}\n", f"\nversion: {version + 1}\n"))
    shutil.copytree(a, c)
    (c / "workflows" / "feedback_survey.yaml").unlink()
    return {"a": load_config(a), "b": load_config(b), "c": load_config(c), "paths": (a, b, c)}


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path):
    if request.param == "memory":
        yield MemoryStore()
        return
    s = SQLiteStore(tmp_path / "f2.db")
    yield s
    s.close()


def test_an_instance_whose_version_no_longer_compiles_is_set_aside_and_the_rest_fire(configs, store):
    old = Engine(configs["a"], store).start("case_audit", DATA, at="2026-10-01T09:00", **QA)  # due 22 Oct
    eng = Engine(configs["b"], store)
    new = eng.start("case_audit", {**DATA, "case_id": "C-2"}, at="2026-10-05T09:00", **QA)  # due 26 Oct

    fired = eng.advance("2026-12-31")

    assert [(o.instance_id, o.name, o.set_aside) for o in fired] == [
        (old.id, "lead_submission", True), (old.id, "peer_submission", True),
        (new.id, "lead_submission", False), (new.id, "peer_submission", False),
    ]
    assert "unknown timescale 'audit_submission'" in fired[0].error
    assert eng.advance("2026-12-31") == []  # no longer stuck on the same item, run after run
    assert [h["id"] for h in eng.held()] == [f"{old.id}/lead_submission", f"{old.id}/peer_submission"]
    alerts = [a for a in eng.outbox() if a["name"] == "set_aside"]
    assert len(alerts) == 2 and alerts[0]["recipients"] == [{"role": "qa_team"}]
    assert eng.get(old.id).deadline("lead_submission").status == "open"  # nothing happened to it

    # the configuration is put right: released, the items fire at their own due time
    fixed = Engine(configs["a"], store)
    assert fixed.release(f"{old.id}/lead_submission") and fixed.release(f"{old.id}/peer_submission")
    assert not fixed.release(f"{old.id}/lead_submission")
    again = fixed.advance("2026-12-31")
    assert [(o.name, o.at.date().isoformat(), o.set_aside) for o in again] == [
        ("lead_submission", "2026-10-23", False), ("peer_submission", "2026-10-23", False)]
    assert fixed.held() == []


def test_a_scheduled_start_of_a_removed_workflow_is_set_aside(configs, store):
    eng = Engine(configs["a"], store)
    eng.schedule_start("feedback_survey", SURVEY, at="2026-10-03T09:00", **QA)
    audit = eng.start("case_audit", DATA, at="2026-10-01T09:00", **QA)

    fired = Engine(configs["c"], store).advance("2026-12-31")

    assert [(o.kind, o.set_aside) for o in fired] == [("start", True), ("breach", False), ("breach", False)]
    assert "unknown workflow 'feedback_survey'" in fired[0].error
    assert Engine(configs["c"], store).get(audit.id).deadline("lead_submission").status == "breached"
    (held,) = Engine(configs["c"], store).held()
    assert held["kind"] == "start" and held["name"] == "feedback_survey"
    # back on a configuration that has the workflow, the start happens once, at its own time
    back = Engine(configs["a"], store)
    assert back.release(held["id"])
    started, *later = back.advance("2026-12-31")
    assert started.kind == "start" and started.error is None and started.at.isoformat().startswith("2026-10-03T09:00")
    assert all(o.kind in ("breach", "reminder") and o.instance_id == started.instance_id for o in later)  # the survey's own clocks
    assert [i.workflow for i in back.instances()].count("feedback_survey") == 1


def test_validate_with_a_store_refuses_the_changes_that_would_strand_instances(configs, store):
    Engine(configs["a"], store).start("case_audit", DATA, at="2026-10-01T09:00", **QA)
    Engine(configs["a"], store).schedule_start("feedback_survey", SURVEY, at="2026-10-03T09:00", **QA)

    assert check_against_store(configs["a"], store, label="s") == []
    renamed = check_against_store(configs["b"], store, label="s")
    assert [(p.code, p.severity) for p in renamed] == [("stranded-instances", "error")]
    assert renamed[0].location.file.endswith("case_audit.yaml") and renamed[0].location.line > 0
    assert "unknown timescale 'audit_submission'" in renamed[0].message
    removed = check_against_store(configs["c"], store, label="s")
    assert [p.code for p in removed] == ["stranded-schedule"]


def test_validate_db_on_the_command_line(configs, tmp_path):
    a, b, _ = configs["paths"]
    db = str(tmp_path / "cli.db")
    runner = CliRunner()
    started = runner.invoke(main, ["--config", str(a), "start", "case_audit", "--db", db, "--actor", "QA-01", "--role", "qa_team",
                                   "--at", "2026-10-01T09:00", "--data", json.dumps(DATA)])
    assert started.exit_code == 0, started.output
    assert runner.invoke(main, ["--config", str(a), "validate", "--db", db]).exit_code == 0
    result = runner.invoke(main, ["--config", str(b), "validate", "--db", db])
    assert result.exit_code == 1
    assert "[stranded-instances]" in result.stdout and "case_audit.yaml:" in result.stdout
    # and the store was only read
    assert runner.invoke(main, ["--config", str(a), "list", "--db", db, "--format", "json"]).exit_code == 0
    missing = runner.invoke(main, ["--config", str(a), "validate", "--db", str(tmp_path / "nowhere.db")])
    assert missing.exit_code == 2 and "no store at" in missing.stderr


def test_held_on_the_command_line(configs, tmp_path):
    a, b, _ = configs["paths"]
    db = str(tmp_path / "held.db")
    runner = CliRunner()

    def qaflow(config: Path, *args: str):
        return runner.invoke(main, ["--config", str(config), "--color", "never", *args, "--db", db])

    qaflow(a, "start", "case_audit", "--actor", "QA-01", "--role", "qa_team", "--at", "2026-10-01T09:00", "--data", json.dumps(DATA))
    advanced = qaflow(b, "advance", "--to", "2026-12-31")
    assert advanced.exit_code == 0
    assert "deadline lead_submission could not be fired: set aside (qaflow held)" in advanced.stdout
    listed = qaflow(b, "held", "--format", "json")
    assert [h["id"] for h in json.loads(listed.stdout)] == ["case_audit-000001/lead_submission", "case_audit-000001/peer_submission"]
    assert qaflow(b, "held", "--release", "case_audit-000001/nothing").exit_code == 2
    assert qaflow(a, "held", "--release-all").exit_code == 0
    assert qaflow(a, "advance", "--to", "2026-12-31").stdout.count("breached") == 2


def test_outdated_lists_an_instance_whose_version_no_longer_compiles(configs, store):
    old = Engine(configs["a"], store).start("case_audit", DATA, at="2026-10-01T09:00", **QA)
    assert [v.id for v in Engine(configs["b"], store).outdated()] == [old.id]


def test_a_failing_store_stops_advance_instead_of_setting_items_aside(configs):
    from engine import StoreError

    class Failing(MemoryStore):
        broken = False

        def load(self, instance_id):
            if self.broken:
                raise StoreError("the database went away", retry=True)
            return super().load(instance_id)

    store = Failing()
    eng = Engine(configs["a"], store)
    eng.start("case_audit", DATA, at="2026-10-01T09:00", **QA)
    store.broken = True
    with pytest.raises(StoreError, match="went away"):
        eng.advance("2026-12-31")
    store.broken = False
    assert eng.held() == []
    assert len(eng.advance("2026-12-31")) == 2  # both breaches, once the store answers again
