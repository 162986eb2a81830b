"""Modelled KPI series: the simulation imports made-up monthly figures and the indicator rules act on them, so a
simulated quarter goes from a red indicator to a proposed audit, a decision, and an accepted audit's programme month."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from pathlib import Path

from engine.simulation.model import load_model
from engine.simulation.runner import KPI_ORIGIN, KPI_SOURCE, simulate

CONFIG = Path(__file__).resolve().parents[2] / "config"


def _model(definitions, **series):
    m = load_model(definitions, CONFIG)
    assert m.kpi_series is not None  # the bundled model has one
    return dataclasses.replace(m, settings=dataclasses.replace(m.settings, warmup=None),
                               kpi_series=dataclasses.replace(m.kpi_series, **series))


def test_monthly_figures_are_imported_as_modelled_and_read_by_the_indicator_rules(definitions, programmes):
    from engine.simulation.distributions import parse_dist

    # a model in which every series slumps at once, for 3 months, 20 points: every indicator goes red
    model = _model(definitions, slump_chance=1.0, slump_months=parse_dist(3), slump_points=parse_dist(20))
    result = simulate(definitions, model, programmes, start=dt.date(2026, 9, 1), end=dt.date(2026, 12, 31), seed=3)
    store = result.stores[0]
    values = store.kpi_values("return_home_interviews_offered_in_72_hours")
    # September, October and November figures, imported on the 5th working day after each month; December's come in January
    assert [v.period for v in values] == ["2026-09", "2026-10", "2026-11"]
    assert {(v.imported_from, v.source, v.level, v.level_id) for v in values} == {(KPI_ORIGIN, KPI_SOURCE, "service", "get_safe")}
    assert [v.imported_at[:10] for v in values] == ["2026-10-07", "2026-11-06", "2026-12-07"]
    proposals = [i for i in store.find("thematic_audit") if i.data.get("proposal")]
    # September and October red: each programme's imported percentage KPIs are proposed on Fri 6 Nov, once each
    kpis = Counter((i.data["service"], i.data["proposal"]["kpi"]) for i in proposals)
    assert kpis[("get_safe", "return_home_interviews_offered_in_72_hours")] == 1 and set(kpis.values()) == {1}
    first = min(proposals, key=lambda i: i.id)
    assert first.created_at.date() == dt.date(2026, 11, 6) and first.data["proposal"]["months"] == ["2026-09", "2026-10"]
    # the service managers decide (the proposal_decision behaviour): each decision is recorded with who made it and
    # when; a declined one keeps its reason; an accepted one joins December, the next programme month
    decided = [i for i in proposals if i.data.get("decision")]
    assert decided and all(i.data["decision"]["by"] == i.data["lead"] for i in decided)
    assert all(i.data["decision"]["reason"] for i in decided if i.state == "declined")
    assert all(i.state == "proposed" for i in proposals if not i.data.get("decision"))
    joined = [i for i in proposals if i.data.get("joined")]
    assert joined and all(i.data["joined"]["month"] == "2026-12-01" for i in joined)
    assert all(i.state not in ("proposed", "accepted") or not i.data.get("joined") for i in proposals)
    assert [p for p in result.problems() if p["rule"] in ("kpi_series", "proposal_decision")] == []


def test_without_a_kpi_series_nothing_is_imported(definitions, programmes):
    model = dataclasses.replace(_model(definitions), kpi_series=None)
    result = simulate(definitions, model, programmes, start=dt.date(2026, 10, 1), end=dt.date(2026, 11, 30), seed=3)
    assert result.stores[0].kpi_values() == []
