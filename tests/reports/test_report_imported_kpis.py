"""The example performance extract imported, then the quarterly report: every format shows the same imported figure,
its target, RAG status, benchmarks and six-month trend."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from report_world import ROOT

from engine import MemoryStore
from engine.kpis import import_kpi_file
from engine.reports import compute_report, kpi_trend, render

KPI = "assessments_within_45_working_days"
TITLE = "Child and family assessments completed within 45 working days"


@pytest.fixture(scope="module")
def quarter(definitions):
    store = MemoryStore()
    import_kpi_file(store, definitions, ROOT / "docs" / "examples" / "kpi_extract.csv", at="2027-01-05T09:00")
    return store, compute_report(store, definitions, start=dt.date(2026, 10, 1), end=dt.date(2026, 12, 31))


def test_json_has_figure_target_rag_benchmarks_and_trend(quarter):
    _, report = quarter
    k = report["metrics"]["kpis"]["programmes"]["assessment_2026_q3"]["kpis"][KPI]
    # 3 months' counts from the extract added up: (65+64+60) of (76+73+66)
    assert (k["numerator"], k["denominator"], k["value"], k["target"], k["status"]) == (189, 215, 87.9, 90.0, "amber")
    assert {b: v["value"] for b, v in k["benchmarks"].items()} == {"england": 82.9, "statistical_neighbours": 85.6, "region": 83.4}
    assert list(k["trend"]) == ["2026-07", "2026-08", "2026-09", "2026-10", "2026-11", "2026-12"]
    assert k["trend"]["2026-07"] == {"value": 84.5, "status": "red"} and k["trend"]["2026-12"] == {"value": 90.9, "status": "green"}
    json.dumps(report)


def test_every_format_agrees(quarter):
    _, report = quarter
    text = render(report, "text")
    line = next(x for x in text.splitlines() if x.strip().startswith(TITLE))
    assert "87.9%" in line and "≥ 90%" in line and "Amber" in line and "82.9%" in line and "85.6%" in line and "189 of 215" in line
    md = render(report, "markdown")
    assert f"| {TITLE} | 87.9% | ≥ 90% | **Amber** | 82.9% | 85.6% | 83.4% |" in md
    assert f"| {TITLE} | 84.5% | 79.7% | 82.6% | 85.5% | 87.7% | 90.9% | ≥ 90% |" in md
    rows = {r["path"]: r["value"] for r in csv.DictReader(io.StringIO(render(report, "csv")))}
    base = f"programmes.assessment_2026_q3.kpis.{KPI}"
    assert rows[f"{base}.value"] == "87.9" and rows[f"{base}.status"] == "amber"
    assert rows[f"{base}.benchmarks.statistical_neighbours.value"] == "85.6" and rows[f"{base}.trend.2026-07.value"] == "84.5"
    html = render(report, "html")
    assert f'<th scope="row">{TITLE}</th><td class="n">87.9%</td><td class="n">≥ 90%</td>' in html


def test_kpi_trend_api_gives_the_run_of_statuses(quarter, definitions):
    store, _ = quarter
    months = kpi_trend(store, definitions, "return_home_interviews_offered_in_72_hours", end=dt.date(2026, 12, 31), programme="get_safe_2026_q3")
    assert [m["month"] for m in months] == ["2026-07", "2026-08", "2026-09", "2026-10", "2026-11", "2026-12"]
    assert all(m["status"] in ("red", "amber", "green") for m in months)
    assert kpi_trend(store, definitions, KPI, end=dt.date(2026, 12, 31), level="service", level_id="assessment")[0] == \
        {"month": "2026-07", "value": 84.5, "status": "red"}
