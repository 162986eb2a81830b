"""qaflow report: periods, levels, formats and files, on a SQLite store."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from report_world import CONFIG, build_world

from engine import UsageError
from engine.cli import main
from engine.cli.report import parse_capacity
from engine.reports.blocks import layout_for
from engine.reports.period import parse_period
from engine.store.open import open_store


@pytest.fixture(scope="module")
def db(definitions, tmp_path_factory):
    path = tmp_path_factory.mktemp("store") / "world.db"
    store = open_store(path)
    build_world(definitions, store=store)
    store.close()
    return str(path)


def run(*args: str):
    return CliRunner().invoke(main, ["--config", str(CONFIG), *args], catch_exceptions=False)


def test_report_json(db):
    result = run("report", "--period", "2026-10", "--db", db, "--format", "json", "--capacity", "P-1=2")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # a month needs no word on how it was read
    report = json.loads(result.output)
    assert report["metrics"]["audits_allocated"] == 4
    assert report["metrics"]["audits_on_time_pct"] == 62.5
    assert report["metrics"]["workload"]["people"]["P-1"]["weeks_over_capacity"] == 3


def test_global_format_option_and_text(db):
    result = run("--format", "json", "report", "--period", "2026-10", "--db", db, "--no-trend")
    assert "trend" not in json.loads(result.output)
    text = run("report", "--period", "2026-10", "--db", db)
    assert text.exit_code == 0 and text.output.startswith("Quality assurance report: October 2026")


def test_financial_quarter_names_the_report(db):
    result = run("report", "--period", "2026/27Q3", "--db", db, "--format", "json", "--level", "team")
    report = json.loads(result.stdout)
    assert report["period"] == {"from": "2026-10-01", "to": "2026-12-31", "kind": "quarter", "label": "Q3 2026/27 (Oct-Dec 2026)"}
    assert report["groups"] == ["assessment_1", "assessment_2", "unassigned"]
    assert result.stderr == "period FY2026/27-Q3: the financial quarter 2026-10-01 to 2026-12-31\n"


@pytest.mark.parametrize(("period", "span"), [("FY2026/27-Q3", ("2026-10-01", "2026-12-31")), ("CY2026-Q3", ("2026-07-01", "2026-09-30")),
                                              ("2026Q3", ("2026-10-01", "2026-12-31")), ("FY2026/27", ("2026-04-01", "2027-03-31"))])
def test_quarters_with_programmes_are_financial_unless_written_otherwise(db, period, span):
    result = run("report", "--period", period, "--db", db, "--format", "json", "--no-trend")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["period"]["from"], report["period"]["to"]) == span
    assert result.stderr.startswith("period ")


def test_a_bare_quarter_says_how_it_was_read(db):
    result = run("report", "--period", "2026Q3", "--db", db, "--no-trend")
    assert result.stderr == ("period FY2026/27-Q3: the financial quarter 2026-10-01 to 2026-12-31 (2026Q3 read as a financial quarter, "
                             "from April, as the programmes count them; write CY2026-Q3 for the calendar quarter 2026-07-01 to 2026-09-30)\n")
    assert result.stdout.startswith("Quality assurance report: Q3 2026/27 (Oct-Dec 2026)")


def test_a_bare_quarter_without_programmes_is_a_calendar_quarter(db, tmp_path):
    import shutil

    config = tmp_path / "config"
    shutil.copytree(CONFIG, config, ignore=shutil.ignore_patterns("programmes"))
    result = CliRunner().invoke(main, ["--config", str(config), "report", "--period", "2026Q3", "--db", db, "--no-trend"])
    assert result.exit_code == 0, result.output
    assert "read as a calendar quarter" in result.stderr and "write FY2026/27-Q3 for the financial quarter 2026-10-01" in result.stderr
    assert result.stdout.startswith("Quality assurance report: Q3 2026 (Jul-Sep 2026)")


def test_html_to_a_file(db, tmp_path):
    out = tmp_path / "reports" / "q3.html"
    result = run("report", "--period", "2026-10-01..2026-12-31", "--db", db, "--format", "html", "--out", str(out))
    assert result.exit_code == 0
    assert out.read_text().startswith("<!DOCTYPE html>")
    md = run("report", "--period", "CY2026-Q4", "--db", db, "--format", "markdown")
    assert md.stdout.startswith("# Quarterly QA report: Q4 2026 (Oct-Dec 2026)")


@pytest.mark.parametrize("period", ["2026-13", "2026Q5", "2026/28Q1", "2026-12-01..2026-10-01", "October", ""])
def test_bad_period_exits_2(db, period):
    result = run("report", "--period", period, "--db", db)
    assert result.exit_code == 2
    assert "bad period" in result.output and "2026Q3" in result.output


def test_usage_errors_exit_2(db, tmp_path):
    assert run("report", "--period", "2026-10", "--db", db, "--level", "region").exit_code == 2
    assert run("report", "--period", "2026-10", "--db", str(tmp_path / "missing.db")).exit_code == 2
    assert run("report", "--period", "2026-10", "--db", db, "--capacity", "P-1=none").exit_code == 2
    assert run("report", "--period", "2026-10", "--db", db, "--report", "nope").exit_code == 2


def test_help_says_which_quarters_are_which():
    result = run("report", "--help")
    text = " ".join(result.output.split())
    assert "FY2026/27-Q3 is the FINANCIAL quarter Oct-Dec 2026, CY2026-Q3 the CALENDAR quarter Jul-Sep 2026" in text
    assert "2026/27Q3" in result.output


def test_parse_period():
    assert (parse_period("2026Q3").start.isoformat(), parse_period("2026Q3").end.isoformat()) == ("2026-07-01", "2026-09-30")
    assert (parse_period("2026/27Q3").start.isoformat(), parse_period("2026/27Q3").end.isoformat()) == ("2026-10-01", "2026-12-31")
    assert (parse_period("2026/27Q4").start.isoformat(), parse_period("2026/27Q4").end.isoformat()) == ("2027-01-01", "2027-03-31")
    assert parse_period("2027-02").end.isoformat() == "2027-02-28"
    assert parse_period("2026-10-01..2026-10-31").kind == "month"
    assert parse_period("2026-10-05..2026-11-04").kind == "range"
    with pytest.raises(UsageError):
        parse_period("2026-02-30..2026-03-01")


def test_a_financial_year_runs_from_april_to_march_and_picks_the_annual_layout():
    year = parse_period("2026/27")
    assert (year.start.isoformat(), year.end.isoformat(), year.kind) == ("2026-04-01", "2027-03-31", "year")
    assert year.label == "Financial year 2026/27 (Apr 2026-Mar 2027)"
    assert parse_period("FY2026/27") == year
    assert parse_period("2026-04-01..2027-03-31") == year  # the same days written as a range
    with pytest.raises(UsageError, match="should be 2026/27"):
        parse_period("2026/28")
    presentation = {"quarterly": {"title": "Q", "sections": []}, "annual": {"title": "A", "sections": []}}
    assert layout_for({"presentation": presentation, "period": year.to_dict()})["title"] == "A"
    assert layout_for({"presentation": presentation, "period": parse_period("2026/27Q3").to_dict()})["title"] == "Q"
    # a report with no annual layout shows a financial year with its quarterly one
    assert layout_for({"presentation": {"quarterly": presentation["quarterly"]}, "period": year.to_dict()})["title"] == "Q"


def test_parse_capacity():
    assert parse_capacity(("3", "P-1=2", "TM=1=1.5")) == {"*": 3.0, "P-1": 2.0, "TM=1": 1.5}
    with pytest.raises(UsageError):
        parse_capacity(("0",))
