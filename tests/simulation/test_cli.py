"""qaflow simulate and qaflow allocate, through the CLI as people run them."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.calendar import LONDON
from engine.cli import main

CONFIG = Path(__file__).resolve().parents[2] / "config"


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def november(monkeypatch):
    """'Today' is 15 November 2026 for the CLI's one reading of the wall clock."""
    from engine import clock

    monkeypatch.setattr(clock.SystemClock, "now", lambda self: dt.datetime(2026, 11, 15, 10, 0, tzinfo=LONDON))


def test_simulate_with_no_arguments_reports_the_current_quarter(november, monkeypatch):
    monkeypatch.chdir(CONFIG.parent)  # ./config is the bundled configuration
    result = run("simulate")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "2026-10-01 to 2026-12-31" in out
    assert "Key figures" in out and "Case file audits allocated" in out
    assert "Simulation\n  model 'bundled', seed 1" in out
    assert "no modelling problems" in out


def test_simulate_json_is_byte_identical_for_a_seed(november):
    args = ["simulate", "--config", str(CONFIG), "--programme", "mash", "--programme", "safeguarding",
            "--from", "2026-10-01", "--to", "2026-10-31", "--format", "json"]
    a = run(*args, "--seed", "4")
    b = run(*args, "--seed", "4")
    c = run(*args, "--seed", "5")
    assert a.exit_code == 0, a.output
    assert a.stdout == b.stdout
    assert a.stdout != c.stdout
    report = json.loads(a.stdout)
    assert report["period"]["from"] == "2026-10-01" and report["period"]["to"] == "2026-10-31"
    assert report["metrics"]["audits_allocated"] == 3 + 3 * 2  # MASH 3 a month, safeguarding 3 teams x 2
    assert report["simulation"]["seed"] == 4 and report["simulation"]["modelling_problems"] == []
    assert report["simulation"]["simulated_from"] == "2026-07-01"  # three months' warm-up


def test_simulate_one_programme_to_a_file(tmp_path):
    out = tmp_path / "q.html"
    result = run("simulate", "--config", str(CONFIG), "--programme", "mash", "--from", "2026-10-01", "--to", "2026-10-31",
                 "--format", "html", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "wrote" in result.stderr
    assert out.read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")


def test_simulate_compare_shows_both_configurations(tmp_path):
    other = tmp_path / "other"
    shutil.copytree(CONFIG, other)
    rules = other / "rules" / "timescales.yaml"  # the lead and peer submissions share this timescale
    text = rules.read_text(encoding="utf-8")
    three_weeks = "  audit_submission:\n    due: 3 weeks, next working day\n"
    assert three_weeks in text
    rules.write_text(text.replace(three_weeks, "  audit_submission:\n    due: 10 working days\n"), encoding="utf-8")
    result = run("simulate", "--config", str(CONFIG), "--compare", str(other), "--programme", "safeguarding",
                 "--from", "2026-10-01", "--to", "2026-10-31", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    comparison = report["comparison"]
    on_time = comparison["metrics"]["audits_on_time_pct"]
    assert on_time["b"] < on_time["a"]  # 10 working days is tighter than 3 weeks
    assert "audits_on_time_pct" in comparison["changed"]
    # same seed and population: the same cases were selected in both
    assert comparison["metrics"]["audits_allocated"]["difference"] == 0


def test_simulate_scenario_and_bad_scenario(tmp_path):
    good = tmp_path / "slow.yaml"
    good.write_text("extends: config\nsimulation: slow\nbehaviours:\n"
                    "  - id: lead_submits\n    workflow: case_audit\n    state: in_progress\n"
                    "    when: data.lead == null\n    actor: lead_auditor\n    fire: submit_lead_audit\n"
                    "    after: {working_days: 20}\n"
                    "    payload:\n      overall: good\n"
                    "      domains: {const: {voice_of_child: good, assessments: good, quality_of_plans: good,"
                    " management_oversight: good, partnership_working: good, embracing_diversity: good}}\n",
                    encoding="utf-8")
    result = run("simulate", "--config", str(CONFIG), "--scenario", str(good), "--programme", "mash",
                 "--from", "2026-10-01", "--to", "2026-10-31", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["simulation"]["model"] == "slow"
    assert report["metrics"]["audit_deadlines"]["lead_submission"]["met_on_time"] == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("extends: config\nbehaviours:\n  - id: x\n    workflow: nope\n    state: s\n    actor: qa_team\n    fire: f\n",
                   encoding="utf-8")
    result = run("simulate", "--config", str(CONFIG), "--scenario", str(bad))
    assert result.exit_code == 1
    assert "bad.yaml:4:15: error: no workflow 'nope'" in result.stderr


# --------------------------------------------------------------------------- allocate


def _cases_csv(path: Path) -> Path:
    from engine.allocation import load_programmes

    programmes, _ = load_programmes(CONFIG)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["case_id", "team", "team_manager", "social_worker", "opened_on", "last_audited_on"])
        n = 0
        for prog in programmes:
            for team in prog.teams:
                for i in range(6):
                    n += 1
                    last = "2026-08-01" if i == 0 else ""  # audited recently: never picked
                    w.writerow([f"C-{n:04d}", team.id, team.team_manager, f"SW-{team.id}", "2025-03-01", last])
    return path


def _pool_csv(path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["person", "role", "team", "manager", "open_peer_audits"])
        for i in range(1, 7):
            w.writerow([f"IRO-{i:02d}", "iro", "iro_service", "IROSM-1", i % 3])
        for i in range(1, 5):
            w.writerow([f"CPC-{i:02d}", "cp_chair", "cp_chairs", "IROSM-1", 0])
        for i in range(1, 5):
            w.writerow([f"QAP-{i:02d}", "qa_practitioner", "qa_service", "QASM-1", 0])
    return path


def test_allocate_from_a_csv_file(tmp_path):
    cases = _cases_csv(tmp_path / "cases.csv")
    pool = _pool_csv(tmp_path / "pool.csv")
    result = run("allocate", "--config", str(CONFIG), "--month", "2026-10", "--cases", str(cases), "--pool", str(pool),
                 "--seed", "3", "--format", "json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert len(out["audits"]) == 29 and out["unallocated"] == []
    assert out["at"] == "2026-10-01T09:00:00+01:00"
    rows = {r["case_id"]: r for r in csv.DictReader(cases.open(encoding="utf-8"))}
    for audit in out["audits"]:
        d = audit["data"]
        assert rows[audit["case_id"]]["last_audited_on"] == ""
        assert d["lead_auditor"] == rows[audit["case_id"]]["team_manager"]
        assert d["peer_auditor"] != d["lead_auditor"] and d["peer_team"] != d["team"]
    assert max(out["peer_load"].values()) <= 3
    again = run("allocate", "--config", str(CONFIG), "--month", "2026-10", "--cases", str(cases), "--pool", str(pool),
                "--seed", "3", "--format", "json")
    assert again.stdout == result.stdout


def test_allocate_text_with_the_default_pool_explains_what_it_could_not_do(tmp_path):
    cases = _cases_csv(tmp_path / "cases.csv")
    result = run("allocate", "--config", str(CONFIG), "--month", "2026-10", "--cases", str(cases), "--seed", "1")
    assert result.exit_code == 0, result.output
    # the default pool is the 7 service managers, at most 3 new peer audits each: 21 of 29
    assert "Selection for 2026-10 (Thu 1 Oct 2026 09:00): 21 audit(s) allocated, 8 problem(s)" in result.stdout
    assert "no peer auditor: none of the 7 people in the pool can take it" in result.stdout
    assert "already at the limit of 3 new peer audits this month" in result.stdout


def test_allocate_into_a_store_starts_each_audit_once(tmp_path):
    pytest.importorskip("engine.store.open")
    cases = _cases_csv(tmp_path / "cases.csv")
    pool = _pool_csv(tmp_path / "pool.csv")
    db = tmp_path / "qa.db"
    args = ["allocate", "--config", str(CONFIG), "--month", "2026-10", "--cases", str(cases), "--pool", str(pool),
            "--seed", "3", "--db", str(db), "--format", "json"]
    first = json.loads(run(*args).stdout)
    assert len(first["started"]) == 29 and {s["state"] for s in first["started"]} == {"in_progress"}
    second = json.loads(run(*args).stdout)
    assert [s["instance"] for s in second["started"]] == [s["instance"] for s in first["started"]]  # not started twice
    # next month: October's cases are excluded (audited within 6 months) and October's open audits count as load
    november = json.loads(run("allocate", "--config", str(CONFIG), "--month", "2026-11", "--cases", str(cases),
                              "--pool", str(pool), "--seed", "3", "--db", str(db), "--format", "json").stdout)
    october_cases = {a["case_id"] for a in first["audits"]}
    assert not october_cases & {a["case_id"] for a in november["audits"]}


def test_simulate_compare_refuses_a_broken_or_missing_configuration_before_running(tmp_path):
    result = run("simulate", "--config", str(CONFIG), "--compare", str(tmp_path), "--from", "2026-10-01", "--to", "2026-10-31")
    assert result.exit_code == 2
    assert "is not a configuration folder (it has no workflows/ folder)" in result.stderr
    broken = tmp_path / "broken"
    shutil.copytree(CONFIG, broken)
    wf = broken / "workflows" / "moderation.yaml"
    text = wf.read_text(encoding="utf-8")
    line = text.splitlines().index(next(t for t in text.splitlines() if t.startswith("version: "))) + 1
    wf.write_text(re.sub(r"^version: \d+$", "version: one", text, count=1, flags=re.M), encoding="utf-8")
    result = run("simulate", "--config", str(CONFIG), "--compare", str(broken), "--from", "2026-10-01", "--to", "2026-10-31")
    assert result.exit_code == 1
    assert result.stdout == ""  # nothing simulated, no report
    assert f"moderation.yaml:{line}:10: error: expected a whole number" in result.stderr


def test_simulate_out_where_nothing_can_be_written_is_a_usage_error(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder", encoding="utf-8")
    result = run("simulate", "--config", str(CONFIG), "--programme", "mash", "--from", "2026-10-01", "--to", "2026-10-31",
                 "-q", "--format", "html", "--out", str(blocker / "report.html"))
    assert result.exit_code == 2
    assert f"cannot write '{blocker / 'report.html'}'" in result.stderr
    assert blocker.read_text(encoding="utf-8") == "not a folder"


def _with_sample(tmp_path: Path, team: str, sample: int) -> Path:
    """A copy of the bundled configuration with one team's monthly audit sample changed."""
    other = tmp_path / "other"
    shutil.copytree(CONFIG, other)
    path = other / "programmes" / "safeguarding.yaml"
    text = path.read_text(encoding="utf-8")
    line = next(t for t in text.splitlines() if f"{{id: {team}," in t)
    path.write_text(text.replace(line, line.replace("monthly_audit_sample: 2", f"monthly_audit_sample: {sample}")), encoding="utf-8")
    return other


def test_compare_changes_only_the_figures_a_change_can_reach(tmp_path):
    """Each case, arrival and instance draws from its own random stream: auditing more of one team's cases
    changes audit figures, and leaves complaints, surveys and the rest of the service's arrivals as they were."""
    other = _with_sample(tmp_path, "safeguarding_1", 4)
    result = run("simulate", "--config", str(CONFIG), "--compare", str(other), "--programme", "safeguarding",
                 "--from", "2026-10-01", "--to", "2026-12-31", "--format", "json", "-q")
    assert result.exit_code == 0, result.output
    comparison = json.loads(result.stdout)["comparison"]
    allocated = comparison["metrics"]["audits_allocated"]
    assert allocated["difference"] == 3 * 2  # two more a month for the quarter
    changed = comparison["changed"]
    assert any(p.startswith("grade_distribution") for p in changed)
    untouched = [p for p in changed if p.split(".")[0] in ("complaints", "surveys")]
    assert untouched == []
    complaints = comparison["metrics"]["complaints"]["received"]
    assert complaints["a"] == complaints["b"] and complaints["a"] > 0
