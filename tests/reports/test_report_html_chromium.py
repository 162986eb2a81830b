"""The HTML report opened in headless Chromium: it renders its charts and logs no console errors.

In CI (``CI`` set) a missing Chromium fails the test; locally it is skipped. .ci/run installs it with
``command -v chromium || (apt-get update -qq && apt-get install -y -qq chromium)``.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from report_world import OCT, ROOT, build_world

from engine import MemoryStore
from engine.kpis import import_kpi_file
from engine.reports import compute_report, render

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--enable-logging=stderr", "--v=0"]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI"):
        pytest.fail("chromium is needed for the HTML report tests in CI: "
                    "command -v chromium || (apt-get update -qq && apt-get install -y -qq chromium)")
    pytest.skip("chromium is not installed (these tests run in CI)")


def run_chromium(tmp_path: Path, page: Path, *extra: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", *extra, page.resolve().as_uri()],
                          capture_output=True, text=True, timeout=180, check=False)


def console_problems(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


@pytest.fixture(scope="module")
def page(world, definitions, tmp_path_factory):
    report = compute_report(world.store, definitions, start=OCT[0], end=OCT[1], level="team", capacity={"P-1": 2})
    path = tmp_path_factory.mktemp("html") / "october.html"
    path.write_text(render(report, "html"), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def quarter_page(definitions, tmp_path_factory):
    """The quarter with the example performance extract imported: every programme's KPIs with figures and trends."""
    store = MemoryStore()
    build_world(definitions, store=store)
    import_kpi_file(store, definitions, ROOT / "docs" / "examples" / "kpi_extract.csv", at="2027-01-05T09:00")
    report = compute_report(store, definitions, start=dt.date(2026, 10, 1), end=dt.date(2026, 12, 31))
    path = tmp_path_factory.mktemp("html") / "q3.html"
    path.write_text(render(report, "html"), encoding="utf-8")
    return path


def test_the_console_check_catches_errors(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><body><script>console.error("boom"); missing();</script></body></html>')
    result = run_chromium(tmp_path, bad, "--dump-dom")
    assert any("Uncaught ReferenceError" in line for line in console_problems(result.stderr)), result.stderr[-2000:]


def test_html_report_renders_in_chromium_without_console_errors(page, tmp_path):
    result = run_chromium(tmp_path, page, "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert console_problems(result.stderr) == []
    svgs = re.findall(r"<svg\b[^>]*>.*?</svg>", dom, flags=re.DOTALL)
    assert len(svgs) == 11  # nine charts, and the KPI trends of the QA KPIs and of the assessment programme
    for svg in svgs:
        assert re.search(r"<title id=\"[^\"]+\">[^<]+</title><desc id=\"[^\"]+\">[^<]+</desc>", svg), svg[:300]
    assert dom.count("<figure") == 11 and dom.count('class="table-wrap"') > 10
    assert "Final grades overall and by domain" in dom and "Capacity (black line)" in dom
    assert '<span class="rag rag-red">Red</span>' in dom


def test_html_report_screenshots(page, tmp_path):
    for width in (1280, 420):  # a desktop and a narrow window
        shot = tmp_path / f"report-{width}.png"
        result = run_chromium(tmp_path, page, f"--window-size={width},2400", "--hide-scrollbars", f"--screenshot={shot}")
        assert result.returncode == 0, result.stderr[-2000:]
        assert console_problems(result.stderr) == []
        data = shot.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
        assert int.from_bytes(data[16:20], "big") == width


def test_kpi_trend_charts_render_in_chromium(quarter_page, tmp_path):
    result = run_chromium(tmp_path, quarter_page, "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    assert console_problems(result.stderr) == []
    dom = result.stdout
    trends = re.findall(r'<figure class="chart" id="chart-kpi-trend-([a-z0-9-]+)".*?</figure>', dom, flags=re.DOTALL)
    # the QA KPIs and every programme: each has figures imported or counted in the six months
    assert sorted(trends) == ["assessment-2026-q3", "care-leavers-2026-q3", "children-in-care-2026-q3", "early-help-2026-q3",
                              "get-safe-2026-q3", "mash-2026-q3", "qa-key-performance-indicators", "safeguarding-2026-q3"]
    figure = re.search(r'<figure class="chart" id="chart-kpi-trend-assessment-2026-q3".*?</figure>', dom, flags=re.DOTALL)[0]
    svg = re.search(r"<svg\b.*?</svg>", figure, flags=re.DOTALL)[0]
    # every month of the imported KPI is marked, by a shape as well as a colour, and says its figure and status
    assert "Child and family assessments completed within 45 working days, 2026-07: 84.5% (Red)" in svg
    assert "Child and family assessments completed within 45 working days, 2026-12: 90.9% (Green)" in svg
    assert svg.count("<rect") >= 3 and "<path" in svg and "<polyline" in svg and "stroke-dasharray" in svg
    assert re.search(r"<desc id=\"[^\"]+\">Child and family assessments completed within 45 working days: 2026-07 84.5% \(red\)", svg)
    # and the same figures in the table beneath it and in the KPI table above
    assert "<th scope=\"row\">Child and family assessments completed within 45 working days</th><td class=\"n\">84.5%</td>" in figure
    assert "<th scope=\"col\">England</th>" in dom and '<span class="rag rag-amber">Amber</span>' in dom
    assert re.search(r"within 45 working days</th><td class=\"n\">87.9%</td><td class=\"n\">≥ 90%</td>", dom)


def test_kpi_trend_screenshots(quarter_page, tmp_path):
    for width in (1280, 420):
        shot = tmp_path / f"q3-{width}.png"
        result = run_chromium(tmp_path, quarter_page, f"--window-size={width},3000", "--hide-scrollbars", f"--screenshot={shot}")
        assert result.returncode == 0, result.stderr[-2000:]
        assert console_problems(result.stderr) == []
        data = shot.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(data[16:20], "big") == width

