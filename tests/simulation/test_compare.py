"""What-if comparisons over several runs: paired differences, their intervals, and the command that shows them."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from engine.cli import main
from engine.simulation.compare import compare_runs, replication_seed, t_quantile

CONFIG = Path(__file__).resolve().parents[2] / "config"


def report(**figures) -> dict:
    return {"period": {"from": "2026-10-01", "to": "2026-10-31"}, "metrics": figures}


def test_t_quantiles_match_the_tables():
    assert t_quantile(1) == 12.706 and t_quantile(4) == 2.776 and t_quantile(30) == 2.042
    assert t_quantile(40) == pytest.approx(2.021, abs=1e-3)
    assert t_quantile(120) == pytest.approx(1.980, abs=1e-3)
    with pytest.raises(ValueError, match="at least 2 runs"):
        t_quantile(0)


def test_each_difference_is_a_mean_with_a_t_interval():
    pairs = [(report(audits=10, complaints=4, on_time=80.0), report(audits=12, complaints=4, on_time=82.0)),
             (report(audits=11, complaints=6, on_time=90.0), report(audits=14, complaints=6, on_time=85.0)),
             (report(audits=9, complaints=5, on_time=70.0), report(audits=13, complaints=5, on_time=74.0))]
    out = compare_runs(pairs, ("A", "B"), seeds=[1, "1/2", "1/3"])
    audits = out["metrics"]["audits"]
    # differences 2, 3, 4: mean 3, sd 1, t(2) = 4.303: 3 -+ 4.303 / sqrt(3)
    half = 4.303 / math.sqrt(3)
    assert audits["a"] == 10 and audits["b"] == 13 and audits["difference"] == 3
    assert (audits["low"], audits["high"]) == (round(3 - half, 2), round(3 + half, 2))
    assert audits["distinguishable"] is True and audits["runs"] == 3
    on_time = out["metrics"]["on_time"]  # +2, -5, +4: the interval straddles 0
    assert on_time["low"] < 0 < on_time["high"] and on_time["distinguishable"] is False
    complaints = out["metrics"]["complaints"]  # the same in every run: no difference at all
    assert complaints["difference"] == 0 and complaints["distinguishable"] is False
    assert out["changed"] == ["audits", "on_time"] and out["distinguishable"] == ["audits"]
    assert out["runs"] == 3 and out["modelled"] is True and out["direction"] == "b minus a"
    assert out["labels"] == {"a": "A", "b": "B"} and out["seeds"] == [1, "1/2", "1/3"]


def test_a_constant_difference_is_beyond_noise_and_one_run_has_no_interval():
    same_shift = [(report(n=k), report(n=k + 2)) for k in (3, 7, 5)]
    leaf = compare_runs(same_shift)["metrics"]["n"]
    assert (leaf["low"], leaf["high"], leaf["distinguishable"]) == (2, 2, True)
    one = compare_runs(same_shift[:1])
    assert one["metrics"]["n"] == {"a": 3, "b": 5, "difference": 2}  # as compare_reports has it
    assert one["runs"] == 1 and one["modelled"] is True and one["distinguishable"] == []


def test_figures_missing_from_some_runs_are_paired_only_where_both_have_a_number():
    pairs = [(report(pct=None, team={"x": 1}), report(pct=50.0, team={"x": 1})),
             (report(pct=40.0, team={}), report(pct=60.0, team={"x": 2})),
             (report(pct=30.0, team={"x": 1}), report(pct=40.0, team={"x": 1}))]
    out = compare_runs(pairs)
    pct = out["metrics"]["pct"]
    assert pct["runs"] == 2 and pct["difference"] == 15  # (20 + 10) / 2; the first run has no A figure
    assert "team.x" in out["changed"]  # present in one configuration only in run 2


@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), min_size=2, max_size=12))
def test_the_interval_holds_the_mean_difference_and_excludes_zero_only_when_it_says_so(values):
    out = compare_runs([(report(n=a), report(n=b)) for a, b in values])
    leaf = out["metrics"]["n"]
    assert leaf["low"] <= leaf["difference"] <= leaf["high"]
    assert leaf["distinguishable"] == (leaf["low"] > 0 or leaf["high"] < 0) or leaf["low"] == leaf["high"] == 0
    assert ("n" in out["changed"]) == any(a != b for a, b in values)


def test_replication_seeds_start_with_the_seed_itself():
    assert [replication_seed(7, r) for r in range(3)] == [7, "7/2", "7/3"]


# --------------------------------------------------------------------------- through the command


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def more_for_one_team(tmp_path_factory) -> Path:
    other = tmp_path_factory.mktemp("compare") / "other"
    shutil.copytree(CONFIG, other)
    path = other / "programmes" / "safeguarding.yaml"
    text = path.read_text(encoding="utf-8")
    before = "{id: safeguarding_1, name: Safeguarding Team 1, team_manager: TM-10, monthly_audit_sample: 2}"
    assert before in text
    path.write_text(text.replace(before, before.replace("sample: 2", "sample: 5")), encoding="utf-8")
    return other


def compare(other: Path, *extra: str):
    return run("simulate", "--config", str(CONFIG), "--compare", str(other), "--programme", "safeguarding",
               "--from", "2026-10-01", "--to", "2026-10-31", "-q", *extra)


def test_runs_are_deterministic_per_seed_whatever_the_workers(more_for_one_team):
    first = compare(more_for_one_team, "--runs", "3", "--workers", "2", "--format", "json")
    assert first.exit_code == 0, first.output
    again = compare(more_for_one_team, "--runs", "3", "--workers", "1", "--format", "json")
    assert again.stdout == first.stdout
    other_seed = compare(more_for_one_team, "--runs", "3", "--workers", "2", "--format", "json", "--seed", "2")
    assert other_seed.stdout != first.stdout
    out = json.loads(first.stdout)
    comparison = out["comparison"]
    assert comparison["runs"] == 3 and comparison["seeds"] == [1, "1/2", "1/3"]
    allocated = comparison["metrics"]["audits_allocated"]
    assert allocated["difference"] == 3 and allocated["distinguishable"]  # 5 instead of 2, every run
    assert "audits_allocated" in comparison["distinguishable"]
    assert not [p for p in comparison["changed"] if p.split(".")[0] in ("complaints", "surveys")]
    # the report itself is run 1's: the same as a single simulation of this configuration
    single = run("simulate", "--config", str(CONFIG), "--programme", "safeguarding", "--from", "2026-10-01",
                 "--to", "2026-10-31", "-q", "--format", "json")
    assert out["metrics"] == json.loads(single.stdout)["metrics"]


def test_the_table_says_which_way_round_and_that_the_figures_are_modelled(more_for_one_team):
    result = compare(more_for_one_team, "--runs", "2")
    assert result.exit_code == 0, result.output
    table = result.stdout.split("Comparison (modelled)")[1].split("\n\n")[0]
    header = table.splitlines()[1]
    assert f"Difference ({more_for_one_team} minus {CONFIG})" in header
    assert "95% interval" in header and "Beyond noise" in header
    row = next(line for line in table.splitlines() if line.strip().startswith("Case file audits allocated"))
    assert row.split()[-5:] == ["+3", "+3", "to", "+3", "yes"]
    assert "the means of 2 simulated runs" in table
    csv = compare(more_for_one_team, "--runs", "2", "--format", "csv").stdout
    assert ",compare:low,audits_allocated,,3" in csv and ",compare:distinguishable,audits_allocated,,true" in csv


def test_runs_need_a_configuration_to_compare_with():
    result = run("simulate", "--config", str(CONFIG), "--programme", "mash", "--from", "2026-10-01", "--to", "2026-10-31",
                 "--runs", "3")
    assert result.exit_code == 2
    assert "--runs needs --compare OTHER_CONFIG" in result.stderr


def test_db_keeps_the_first_run_of_this_configuration(more_for_one_team, tmp_path):
    from engine.store.open import open_store

    alone, compared = tmp_path / "alone.db", tmp_path / "compared.db"
    plain = run("simulate", "--config", str(CONFIG), "--programme", "safeguarding", "--from", "2026-10-01",
                "--to", "2026-10-31", "-q", "--db", str(alone))
    assert plain.exit_code == 0, plain.output
    result = compare(more_for_one_team, "--runs", "2", "--workers", "2", "--db", str(compared))
    assert result.exit_code == 0, result.output

    def contents(path: Path) -> list[tuple[str, str, int]]:
        store = open_store(path, readonly=True)
        try:
            return sorted((i.id, i.state, len(store.history(i.id))) for i in store.find())
        finally:
            store.close()

    assert contents(compared) == contents(alone) != []
