"""Renderers: text summary, JSON, CSV columns, the Markdown briefing and quarterly report, HTML structure."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re

import pytest
from report_world import OCT

from engine.reports import FORMATS, compare_reports, compute_report, render
from engine.reports.render import CSV_COLUMNS


@pytest.fixture(scope="module")
def month(world, definitions):
    return compute_report(world.store, definitions, start=OCT[0], end=OCT[1], capacity={"P-1": 2})


@pytest.fixture(scope="module")
def quarter(world, definitions):
    return compute_report(world.store, definitions, start=dt.date(2026, 10, 1), end=dt.date(2026, 12, 31), level="team")


def test_formats():
    assert FORMATS == ("text", "json", "csv", "markdown", "html")


def test_unknown_format(month):
    with pytest.raises(ValueError, match="unknown format"):
        render(month, "pdf")


def test_json_is_the_report_with_sorted_keys(month):
    text = render(month, "json")
    assert json.loads(text) == month
    assert render(month, "json") == text


def test_text_summary(month):
    text = render(month, "text", title="October figures")
    assert text.startswith("October figures: October 2026 (2026-10-01 to 2026-10-31)")
    assert re.search(r"Case file audits allocated\s+4\n", text)
    assert re.search(r"Audit submissions on time \(%\)\s+62.5%", text)
    assert re.search(r"Audits needing moderation\s+33.3%\s+≤ 30%\s+Amber\s+·····▄\s+1 of 3\n", text)  # its trend, 2026-05 to 2026-10
    assert len(text.splitlines()) < 60


def test_csv_has_stable_columns_and_one_row_per_value(month, quarter):
    rows = list(csv.reader(io.StringIO(render(month, "csv"))))
    assert tuple(rows[0]) == CSV_COLUMNS == ("period_from", "period_to", "level", "group", "metric", "path", "value")
    assert all(len(r) == len(CSV_COLUMNS) for r in rows)
    index = {(r[3], r[4], r[5]): r[6] for r in rows[1:]}
    assert index[("all", "audits_allocated", "")] == "4"
    assert index[("all", "audits_on_time_pct", "")] == "62.5"
    assert index[("all", "grade_distribution", "domains.voice_of_child.counts.inadequate")] == "2"
    assert index[("all", "workload", "people.P-1.weeks.2026-10-05")] == "3"
    assert index[("all", "trend", "audits_allocated.2026-10")] == "4"
    assert index[("all", "complaints", "stage2_outcomes.outcome.total")] == "0"
    q = {(r[3], r[4], r[5]): r[6] for r in list(csv.reader(io.StringIO(render(quarter, "csv"))))[1:]}
    assert q[("assessment_1", "audits_allocated", "")] == "2"
    assert q[("unassigned", "complaints", "received")] == "3"


def test_csv_with_a_comparison(month, quarter):
    rows = list(csv.reader(io.StringIO(render(month, "csv", comparison=compare_reports(month, quarter)))))
    found = {(r[3], r[4], r[5]): r[6] for r in rows[1:]}
    assert found[("compare:a", "audits_allocated", "")] == "4"
    assert found[("compare:difference", "audits_allocated", "")] == "0"


def sections(markdown: str) -> list[str]:
    return re.findall(r"^## (.+)$", markdown, flags=re.MULTILINE)


def test_markdown_monthly_briefing(month):
    md = render(month, "markdown")
    assert md.startswith("# Monthly managers' briefing: October 2026")
    assert sections(md) == ["Compliance", "Overview of grades", "Audit themes", "Good practice", "Good practice examples and exemplars",
                            "Areas for development", "Closing the loop - actions and supervision", "Workload",
                            "Key performance indicators", "Trajectory against earlier months"]
    assert "| Lead auditor submits the completed audit | 4 | 3 | 1 | 0 | 0 | 0 | 0 | 75.0% |" in md
    assert "| Voice of the Child | 0 | 1 | 0 | 2 | 3 | 33.3% |" in md
    good = md.split("## Good practice")[1].split("##")[0]
    assert "- Assessments: 66.7% graded favourably (3 graded)" in good
    development = md.split("## Areas for development")[1].split("##")[0]
    assert "- Voice of the Child: 33.3% graded favourably (3 graded); 2 Inadequate" in development
    assert "| Audits needing moderation | 33.3% | ≤ 30% | **Amber** | 1 of 3 |" in md
    trend = md.split("**QA key performance indicators: the last months**")[1]
    assert "| Indicator | 2026-05 | 2026-06 | 2026-07 | 2026-08 | 2026-09 | 2026-10 | Target |" in trend
    assert "| Audits needing moderation | - | - | - | - | - | 33.3% | ≤ 30% |" in trend
    trajectory = md.split("## Trajectory against earlier months")[1]
    assert "| Audits allocated | 4 | - |" in trajectory  # the history starts in October: no empty months before it
    assert "2026-09" not in trajectory
    assert "Lead: Good → Requires improvement to be good: 1" in md


def test_markdown_quarterly_report(quarter):
    md = render(quarter, "markdown")
    assert md.startswith("# Quarterly QA report: Oct-Dec 2026")
    found = sections(md)
    for name in ("Case file audit activity (the three months)", "Learning from complaints", "Feedback from those using the service",
                 "IRO and CP chair escalations", "Multi-agency audit", "Inadequate audits", "Trajectory of improvement", "By team"):
        assert name in found, name
    activity = md.split("## Case file audit activity (the three months)")[1].split("\n## ")[0]
    assert "| 2026-10 | 2026-11 | 2026-12 |" in activity and "2026-09" not in activity
    assert "| Stage 1 response sent | 3 | 2 | 1 | 0 | 0 | 1 | 0 | 66.7% |" in md
    assert "| assessment_1 | 2 | 2 | 1 | 0 | 75.0% | 50.0% |" in md
    assert "Review the Inadequate audit at 6 weeks | 1 | 0 | 1 |" in md


def test_markdown_with_a_comparison(month, quarter):
    md = render(quarter, "markdown", comparison=compare_reports(month, quarter, labels=("October", "Q3")))
    table = md.split("## Comparison")[1]
    assert "| Figure | October | Q3 | Difference (Q3 minus October) |" in table  # which way round it is
    assert "| Audits recorded on the case system | 1 | 1 | 0 |" in table
    assert "(modelled)" not in table  # measured, not simulated
    # a changed figure below the key ones is labelled as the report labels it, not by its path
    assert "| Audit timescales / QA team records the final audit on the case system / Late | 1 | 2 | +1 |" in table
    assert "audit_deadlines.case_system_record" not in table


def test_html_structure(month):
    page = render(month, "html")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<script" not in page and "http://" not in page and "https://" not in page and "@import" not in page
    assert page.count("<svg") == 11  # the nine charts, and the KPIs' trends (the QA KPIs and the assessment programme's)
    assert page.count('role="img"') == 11
    for cid in ("kpi-trend-qa-key-performance-indicators", "kpi-trend-assessment-2026-q3"):
        assert f'id="chart-{cid}"' in page and f'id="chart-{cid}-data"' in page
    for cid in ("grades_by_domain", "on_time_trend", "moderation_trend", "workload", "breaches_by_team", "audit_themes", "actions_outstanding",
                "partner_escalation_themes", "rapid_review_themes"):
        assert f'id="chart-{cid}"' in page and f'id="chart-{cid}-data"' in page  # each chart has its data table
        assert f'aria-labelledby="chart-{cid}-t chart-{cid}-d"' in page
    assert '<span class="rag rag-amber">Amber</span>' in page
    assert "@media print" in page and 'name="viewport"' in page
