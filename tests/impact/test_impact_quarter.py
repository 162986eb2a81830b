"""qaflow impact on a simulated quarter: the lead audit deadline changed from 3 weeks to 15 working days.

The moved deadlines and the audits that would now be late are worked out here independently, from the
stored history (allocation date, the time the lead audit was submitted or the audit closed) and a
working-day count over the England and Wales bank holidays written out below, and compared with what
``qaflow impact`` lists. The store must not change by a byte.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from impact_config import CONFIG, edit

from engine import load_config
from engine.cli import main
from engine.simulation.api import run_simulation
from engine.store.open import open_store

LONDON = ZoneInfo("Europe/London")
# England and Wales bank holidays (gov.uk/bank-holidays), for the working-day count below
BANK_HOLIDAYS = {dt.date(2026, 1, 1), dt.date(2026, 4, 3), dt.date(2026, 4, 6), dt.date(2026, 5, 4), dt.date(2026, 5, 25),
                 dt.date(2026, 8, 31), dt.date(2026, 12, 25), dt.date(2026, 12, 28), dt.date(2027, 1, 1),
                 dt.date(2027, 3, 26), dt.date(2027, 3, 29)}
LEAD = "    timescale: audit_submission  # 3 weeks of allocation (config/rules/timescales.yaml)\n    from: data.allocated_on"


def working(day: dt.date) -> bool:
    return day.weekday() < 5 and day not in BANK_HOLIDAYS


def add_working_days(day: dt.date, n: int) -> dt.date:
    while n:
        day += dt.timedelta(days=1)
        n -= working(day)
    return day


def three_weeks(day: dt.date) -> dt.date:
    due = day + dt.timedelta(days=21)
    while not working(due):
        due += dt.timedelta(days=1)
    return due


def end_of(day: dt.date) -> dt.datetime:
    """A deadline due on ``day`` is late from midnight at its end."""
    nxt = day + dt.timedelta(days=1)
    return dt.datetime(nxt.year, nxt.month, nxt.day, tzinfo=LONDON)


def expected(store) -> tuple[dict[str, tuple[dt.date, dt.date]], set[str]]:
    """From the stored history alone: {audit: (due in 3 weeks, due in 15 working days)} for the moved ones, and the now late."""
    histories = {inst.id: store.history(inst.id) for inst in store.find()}
    until = max(dt.datetime.fromisoformat(e["at"]) for h in histories.values() for e in h)
    moved, late = {}, set()
    for inst in store.find("case_audit"):
        allocated = dt.date.fromisoformat(inst.data["allocated_on"])
        old, new = three_weeks(allocated), add_working_days(allocated, 15)
        closed = next((dt.datetime.fromisoformat(e["at"]) for e in histories[inst.id] for a in e["actions"]
                       if a.get("deadline") == "lead_submission" and a["action"] in ("satisfy_deadline", "cancel_deadline")
                       and a.get("changed")), None)
        when = closed if closed is not None else until  # still open: late once the end of the history is past its due date
        if old != new:
            moved[inst.id] = (old, new)
        if when >= end_of(new) and when < end_of(old):
            late.add(inst.id)
    return moved, late


def first_seed_with_a_late_audit(definitions) -> int:
    """A seed whose quarter has an audit submitted between the two due dates (the behaviour model decides how many)."""
    for seed in range(1, 40):
        result = run_simulation(definitions, start="2026-10-01", end="2026-12-31", seed=seed)
        if expected(result.stores[0])[1]:
            return seed
    raise AssertionError("no simulated quarter (seeds 1-39) has a lead audit submitted between the two due dates")


def files(db: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(db.parent.glob(db.name + "*"))}


@pytest.fixture(scope="module")
def quarter(tmp_path_factory):
    """A simulated quarter written into a SQLite store by `qaflow simulate --db`, and the changed configuration."""
    definitions = load_config(CONFIG)
    seed = first_seed_with_a_late_audit(definitions)
    folder = tmp_path_factory.mktemp("impact")
    db = folder / "quarter.db"
    run = CliRunner().invoke(main, ["--config", str(CONFIG), "simulate", "--from", "2026-10-01", "--seed", str(seed),
                                    "--db", str(db), "-q", "--format", "json"], catch_exceptions=False)
    assert run.exit_code == 0, run.output
    new = folder / "config-15wd"
    import shutil

    shutil.copytree(CONFIG, new)
    edit(new / "workflows" / "case_audit.yaml", LEAD, "    due: 15 working days\n    from: data.allocated_on")
    text = (new / "workflows" / "case_audit.yaml").read_text(encoding="utf-8")
    version = int(re.search(r"^version: (\d+)$", text, re.MULTILINE).group(1))
    edit(new / "workflows" / "case_audit.yaml", f"\nversion: {version}\n", f"\nversion: {version + 1}\n")
    store = open_store(db, readonly=True)
    try:
        moved, late = expected(store)
        audits = sum(1 for _ in store.find("case_audit"))
    finally:
        store.close()
    return db, new, moved, late, audits


def impact(db: Path, new: Path, *args: str):
    return CliRunner().invoke(main, ["impact", "--config", str(new), "--current", str(CONFIG), "--db", str(db), *args],
                              catch_exceptions=False)


def test_lists_the_audits_whose_lead_deadline_moves_and_those_now_late_and_changes_nothing(quarter, tmp_path):
    db, new, moved, late, audits = quarter
    assert moved and late and len(moved) < audits  # allocations on a weekend move; the others do not
    before = files(db)
    html = tmp_path / "impact.html"
    run = impact(db, new, "--format", "json", "--html", str(html))
    assert run.exit_code == 0, run.output
    report = json.loads(run.stdout)
    assert files(db) == before  # not a byte written

    assert report["reproduced"] is True and report["mismatches"] == []
    found = {i["instance"]: d for i in report["instances"] for d in i["deadlines"] if d["moved"]}
    assert {iid: (dt.date.fromisoformat(d["current"]["due"]), dt.date.fromisoformat(d["new"]["due"])) for iid, d in found.items()} == moved
    assert {d["deadline"] for d in found.values()} == {"lead_submission"}  # the peer's 3 weeks stay
    assert {i["instance"] for i in report["instances"] for d in i["deadlines"] if d["now_late"]} == late
    totals = report["totals"]
    assert totals["deadlines_moved"] == len(moved) and totals["deadlines_now_late"] == len(late)
    assert totals["by_deadline"]["moved"] == {"case_audit.lead_submission": len(moved)}
    assert totals["deadlines_no_longer_late"] == 0  # an earlier due date makes nobody less late
    assert totals["events_now_refused"] == totals["instances_now_started"] == totals["instances_no_longer_started"] == 0
    # both explanations: the rule each due date comes from
    some = next(iter(found.values()))
    assert "3 weeks after" in some["current"]["explanation"][0] and "15 working days after" in some["new"]["explanation"][0]
    # a late audit is told its lead auditor is overdue, at the new due date's end
    for i in report["instances"]:
        if i["instance"] in late:
            alert = next(a for a in i["alerts"] if a["name"] == "lead_audit_overdue")
            new_due = dt.date.fromisoformat(next(d for d in i["deadlines"] if d["deadline"] == "lead_submission")["new"]["due"])
            assert dt.datetime.fromisoformat(alert["new"]["at"]) == end_of(new_due)

    page = html.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page
    assert all(iid in page for iid in late | set(moved))

    text = impact(db, new)
    assert text.exit_code == 0
    now_late = text.stdout.split("\nNow late\n", 1)[1].split("\n\n", 1)[0]
    assert sorted(re.findall(r"case_audit-\d+", now_late)) == sorted(late)
    assert f"Deadlines whose due date moves{len(moved):>22}" in text.stdout
    assert files(db) == before


def test_the_same_configuration_changes_nothing_and_the_check_passes(quarter):
    db, _, _, _, _ = quarter
    run = impact(db, CONFIG, "--fail-on-change", "--format", "json")
    assert run.exit_code == 0, run.output
    report = json.loads(run.stdout)
    assert report["instances"] == [] and report["kpis"] == [] and report["reproduced"] is True


def test_fail_on_change_exits_1_when_something_would_differ(quarter):
    db, new, _, _, _ = quarter
    run = impact(db, new, "--fail-on-change", "--period", "2026-11")
    assert run.exit_code == 1
    assert "KPIs over Sun 1 Nov 2026 to Mon 30 Nov 2026" in run.stdout
