"""qaflow impact and qaflow simulate --db: usage errors and bad configurations say what is wrong, and change nothing."""

from __future__ import annotations

import hashlib
import json

import pytest
from click.testing import CliRunner
from impact_config import CONFIG
from report_world import build_world

from engine import load_config
from engine.cli import main
from engine.store.open import open_store


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("store") / "world.db"
    store = open_store(path)
    build_world(load_config(CONFIG), store=store)
    store.close()
    return path


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_the_changed_configuration_must_be_named(db):
    result = run("impact", "--db", str(db))
    assert result.exit_code == 2 and "qaflow impact --config NEW" in result.output


def test_current_must_be_a_configuration_folder(db, tmp_path):
    result = run("impact", "--config", str(CONFIG), "--current", str(tmp_path), "--db", str(db))
    assert result.exit_code == 2 and "is not a configuration folder" in result.output


def test_a_missing_store_is_not_made(tmp_path):
    result = run("impact", "--config", str(CONFIG), "--current", str(CONFIG), "--db", str(tmp_path / "nope.db"))
    assert result.exit_code == 2 and "no store at" in result.output
    assert not (tmp_path / "nope.db").exists()


def test_a_broken_new_configuration_is_reported_with_its_place(db, changed_config):
    folder = changed_config(("workflows/case_audit.yaml", "    due: 5 working days\n", "    due: 5 wroking days\n"))
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    result = run("impact", "--config", str(folder), "--current", str(CONFIG), "--db", str(db))
    assert result.exit_code == 1
    assert f"{folder / 'workflows' / 'case_audit.yaml'}:" in result.output and "wroking" in result.output
    assert "Traceback" not in result.output
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def test_a_bad_period_or_time_is_a_usage_error(db):
    assert run("impact", "--config", str(CONFIG), "--current", str(CONFIG), "--db", str(db), "--period", "autumn").exit_code == 2
    result = run("impact", "--config", str(CONFIG), "--current", str(CONFIG), "--db", str(db), "--until", "soon")
    assert result.exit_code == 2 and "'soon' is not an ISO 8601 date or time" in result.output


def test_until_advances_the_clock_past_the_history(db):
    """--until runs the clock on after the last recorded event, and the KPI period with it."""
    base = json.loads(run("impact", "--config", str(CONFIG), "--current", str(CONFIG), "--db", str(db), "--format", "json").stdout)
    later = json.loads(run("impact", "--config", str(CONFIG), "--current", str(CONFIG), "--db", str(db), "--format", "json",
                           "--until", "2027-06-01").stdout)
    assert base["history"]["until"].startswith("2027-01-20T09:00") and later["history"]["until"].startswith("2027-06-01T00:00")
    assert later["period"] == {"from": "2026-10-01", "to": "2027-05-31"}
    assert later["history"]["events"] == base["history"]["events"]  # the same recorded events, the clock run on
    early = json.loads(run("impact", "--config", str(CONFIG), "--current", str(CONFIG), "--db", str(db), "--format", "json",
                           "--until", "2026-10-10").stdout)
    assert early["history"]["events"] < base["history"]["events"]
    assert any("were not replayed" in note for note in early["notes"])


def test_simulate_writes_only_into_a_new_store(db):
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    result = run("--config", str(CONFIG), "simulate", "--from", "2026-10-01", "--to", "2026-10-31", "--db", str(db), "-q")
    assert result.exit_code == 2 and "already holds instances" in result.output
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def test_simulate_db_holds_what_the_simulation_did(tmp_path):
    """The store is what the simulation's engine committed: the same instances, states and history."""
    from engine.impact import read_history
    from engine.simulation.api import run_simulation

    target = tmp_path / "sim.db"
    result = run("--config", str(CONFIG), "simulate", "--from", "2026-10-01", "--to", "2026-10-31", "--seed", "3",
                 "--db", str(target), "-q", "--format", "json")
    assert result.exit_code == 0, result.output
    memory = run_simulation(load_config(CONFIG), start="2026-10-01", end="2026-10-31", seed=3).stores[0]
    store = open_store(target, readonly=True)
    try:
        written, simulated = read_history(store), read_history(memory)
    finally:
        store.close()
    assert sorted(written.keys.values()) == sorted(simulated.keys.values())

    def shape(recorded):
        by_key = recorded.by_key
        return {key: (recorded.instances[by_key[key]].state,
                      [(e["trigger"], e["from"], e["to"], e["at"]) for e in recorded.history[by_key[key]]]) for key in by_key}

    assert shape(written) == shape(simulated)
    assert len(written.alerts) == len(simulated.alerts) > 0


def test_an_empty_store_has_nothing_to_replay(tmp_path):
    open_store(tmp_path / "empty.db").close()
    result = run("impact", "--config", str(CONFIG), "--current", str(CONFIG), "--db", str(tmp_path / "empty.db"))
    assert result.exit_code == 2 and "no history to replay" in result.output


def test_text_from_the_store_cannot_forge_lines(tmp_path, changed_config):
    from engine import Engine

    store = open_store(tmp_path / "forged.db")
    eng = Engine(load_config(CONFIG), store)
    eng.start("case_audit", {"case_id": "C-1\nNow late\n  case_audit-000999", "team": "assessment_1", "service": "assessment",
                             "lead_auditor": "TM-1", "peer_auditor": "P-1", "social_worker": "SW-1"},
              actor="QA-1", roles=["qa_team"], at="2026-11-01T09:00")
    store.close()
    folder = changed_config(("workflows/case_audit.yaml", "    timescale: audit_submission  # 3 weeks of allocation",
                             "    due: 15 working days  #"))
    result = run("impact", "--config", str(folder), "--current", str(CONFIG), "--db", str(tmp_path / "forged.db"),
                 "--until", "2026-11-23T12:00")
    assert result.exit_code == 0, result.output
    assert "C-1\\nNow late\\n  case_audit-000999" in result.stdout
    assert "\nNow late\n  case_audit-000001 (C-1\\n" in result.stdout and "\n  case_audit-000999" not in result.stdout
