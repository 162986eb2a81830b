"""A synthetic authority's case rows as the arrivals and the monthly selection see them, month after month."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from pathlib import Path

import pytest

from engine.simulation.generators import Const
from engine.simulation.model import load_model
from engine.simulation.population import build_population

CONFIG = Path(__file__).resolve().parents[2] / "config"


@pytest.fixture
def population(definitions, programmes):
    spec = load_model(definitions, CONFIG).population
    spec = dataclasses.replace(spec, monthly_turnover=0.3)  # plenty of cases close and open each month
    return spec, build_population(spec, programmes, authority="la001", name="Authority 1", seed=3, start=dt.date(2026, 4, 1))


def _rows(pop, teams):
    return [row["case_id"] for team in teams for row in pop.cases.get(team, ())]


def test_the_cases_offered_follow_turnover_and_new_rows(population):
    spec, pop = population
    prog = next(p for p in pop.programmes if p.teams)
    teams = [t.id for t in prog.teams]
    before = [row["case_id"] for row in pop.programme_cases(prog)]
    assert before == _rows(pop, teams)
    assert [row["case_id"] for row in pop.all_cases()] == _rows(pop, sorted(pop.cases))

    rng = random.Random(5)
    for month in (dt.date(2026, 5, 1), dt.date(2026, 6, 1)):
        pop.turnover(rng, month, spec)
        # closed cases are gone and the new ones are offered, to the arrivals and to the selection alike
        assert [row["case_id"] for row in pop.programme_cases(prog)] == _rows(pop, teams)
        assert [row["case_id"] for row in pop.all_cases()] == _rows(pop, sorted(pop.cases))
    assert [row["case_id"] for row in pop.programme_cases(prog)] != before

    team = pop.teams[teams[0]]
    added = pop.new_case(team, rng, dt.date(2026, 6, 2), spec)
    pop.cases[team.id].append(added)
    assert added in pop.programme_cases(prog)
    assert added in pop.all_cases()
    added["last_audited_on"] = "2026-06-03"  # a row changed in place is seen as it now is
    assert next(r for r in pop.all_cases() if r["case_id"] == added["case_id"])["last_audited_on"] == "2026-06-03"


def test_a_constant_payload_is_a_fresh_copy_each_time():
    const = Const({"items": [{"grade": "good"}], "note": "x", "count": 2, "flag": True, "none": None})
    first, second = const.value(None), const.value(None)  # type: ignore[arg-type]  # a constant reads no context
    assert first == second == const.v
    first["items"][0]["grade"] = "inadequate"
    first["items"].append({})
    assert second == const.v == {"items": [{"grade": "good"}], "note": "x", "count": 2, "flag": True, "none": None}
