"""qaflow kpi import, list and definitions on a SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from engine.cli import main

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config"
EXAMPLE = ROOT / "docs" / "examples" / "kpi_extract.csv"


def run(*args: str):
    return CliRunner().invoke(main, ["--config", str(CONFIG), *args], catch_exceptions=False)


def test_import_then_import_again_then_list(tmp_path):
    db = str(tmp_path / "q.db")
    first = run("kpi", "import", str(EXAMPLE), "--db", db, "--at", "2027-01-05T09:00")
    assert first.exit_code == 0, first.output
    assert first.stdout.splitlines() == [
        f"kpi_extract.csv: stored 116 value(s) of 18 KPI(s), 2026-07-01 to 2026-12-31: 116 new, 0 replacing what was stored (in {db})",
        # the indicator rules read what was stored: two programme KPIs were red every month
        "indicator rules: 18 programme KPI(s) read; 2 targeted audit(s) proposed",
        ("  care_leavers_2026_q3 care_leavers_eet: red_two_months (2026-07, 2026-08, 2026-09, 2026-10, 2026-11, 2026-12): "
        "proposed thematic_audit-000001"),
        ("  get_safe_2026_q3 return_home_interviews_offered_in_72_hours: red_two_months (2026-07, 2026-08, 2026-09, 2026-10, 2026-11, 2026-12): "
        "proposed thematic_audit-000002")]
    again = run("kpi", "import", str(EXAMPLE), "--db", db, "--at", "2027-01-06T09:00")
    lines = again.stdout.splitlines()
    assert lines[0].endswith("0 new, 116 replacing what was stored (116 with the same figures) (in " + db + ")")
    assert lines[1] == "indicator rules: 18 programme KPI(s) read; 0 targeted audit(s) proposed, 2 already proposed"
    lines = lines[4:]
    assert lines[0] == "replaced:" and lines[1] == "  contact_decision_within_1_working_day service mash 2026-07: the same figures"
    assert lines[-1] == "  ... and 96 more (--format json lists them all)"
    listed = run("kpi", "list", "--db", db, "--kpi", "assessments_within_45_working_days", "--level", "team", "--period", "2026-11")
    assert [line.split()[:4] for line in listed.stdout.splitlines()] == [
        ["KPI", "Period", "Level", "Value"],
        ["assessments_within_45_working_days", "2026-11", "team", "assessment_1"],
        ["assessments_within_45_working_days", "2026-11", "team", "assessment_2"]]
    as_json = json.loads(run("kpi", "list", "--db", db, "--format", "json", "--kpi", "cla_long_term_stability", "--period", "FY2026/27-Q3").stdout)
    assert [v["period"] for v in as_json] == ["2026-10", "FY2026/27-Q3", "2026-11", "2026-12"]
    assert as_json[1] == {**as_json[1], "numerator": 123, "denominator": 179, "value": 68.7, "note": "as at the last day of the quarter"}


def test_a_refused_file_names_rows_and_columns_and_exits_1(tmp_path):
    db = str(tmp_path / "q.db")
    bad = tmp_path / "bad.csv"
    bad.write_text("kpi,period,level,level_id,numerator,denominator\n"
                   "assessments_within_45_working_days,2026-10,service,assessment,80,76\n"
                   "moderation_rate,2026Q3,,,1,2\n", encoding="utf-8")
    result = run("kpi", "import", str(bad), "--db", db)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[:4] == [
        f"error: {bad}: refused, nothing was stored (3 problem(s)):",
        ("  row 2, column E (numerator): the numerator 80 is above the denominator 76: a percentage counts part of a whole "
        "[numerator-above-denominator]"),
        "  row 3, column A (kpi): KPI 'moderation_rate' is computed by qaflow from workflow history; its figures are not imported [computed-kpi]",
        ("  row 3, column B (period): period '2026Q3' cannot be read: it does not say whether quarters count from April or January: "
        "write FY2026/27-Q3 for Q3 2026/27 (Oct-Dec 2026) or CY2026-Q3 for Q3 2026 (Jul-Sep 2026) [bad-period]")]
    as_json = json.loads(run("kpi", "import", str(bad), "--db", db, "--format", "json").stdout)
    assert as_json["error"] == "ImportRefused" and [p["code"] for p in as_json["problems"]] == [
        "numerator-above-denominator", "computed-kpi", "bad-period"]
    listed = run("kpi", "list", "--db", db)
    assert listed.stdout == "" and "no KPI figures stored" in listed.stderr


def test_dry_run_and_json(tmp_path):
    db = str(tmp_path / "q.db")
    dry = run("kpi", "import", str(EXAMPLE), "--db", db, "--dry-run", "--format", "json")
    out = json.loads(dry.stdout)
    assert out["dry_run"] is True and len(out["stored"]) == 116 and out["replaced"] == []
    assert not Path(db).exists()  # a dry run makes no store
    assert run("kpi", "import", "missing.csv", "--db", db).exit_code == 2


def test_definitions_say_computed_or_imported():
    result = run("kpi", "definitions")
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:]}
    assert rows["moderation_rate"][1:4] == ["computed", "percent", "≤"]
    assert rows["assessments_within_45_working_days"][1:3] == ["imported", "percent"]
    as_json = json.loads(run("kpi", "definitions", "--format", "json").stdout)
    assert as_json["re_referrals_within_12_months"]["defined_in"] == "mash_2026_q3"
    assert as_json["re_referrals_within_12_months"]["values"] == "imported"
