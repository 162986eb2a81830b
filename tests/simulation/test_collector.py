"""A simulation raises the garbage collector's thresholds while it runs and leaves the host's as they were."""

from __future__ import annotations

import gc

import pytest

from engine.simulation.collector import SIMULATION_THRESHOLDS, tuned_collector


@pytest.fixture
def host_thresholds():
    before = gc.get_threshold()
    gc.set_threshold(900, 11, 12)  # a host's own choice
    yield (900, 11, 12)
    gc.set_threshold(*before)


def test_thresholds_are_raised_inside_and_restored_after_also_on_error(host_thresholds):
    with tuned_collector():
        assert gc.get_threshold() == SIMULATION_THRESHOLDS
    assert gc.get_threshold() == host_thresholds
    with pytest.raises(RuntimeError), tuned_collector():
        raise RuntimeError("the run failed")
    assert gc.get_threshold() == host_thresholds


def test_a_host_that_collects_less_often_already_is_left_alone():
    before = gc.get_threshold()
    gc.set_threshold(200_000, 5, 5)
    try:
        with tuned_collector():
            assert gc.get_threshold() == (200_000, 5, 5)
        assert gc.get_threshold() == (200_000, 5, 5)
    finally:
        gc.set_threshold(*before)


def test_simulate_leaves_the_thresholds_as_it_found_them(host_thresholds, definitions, programmes):
    import dataclasses
    import datetime as dt
    from pathlib import Path

    from engine.simulation.model import load_model
    from engine.simulation.runner import simulate

    model = load_model(definitions, Path(__file__).resolve().parents[2] / "config")
    model = dataclasses.replace(model, settings=dataclasses.replace(model.settings, warmup=None))
    seen = []
    simulate(definitions, model, programmes, start=dt.date(2026, 10, 1), end=dt.date(2026, 10, 7), seed=1,
             progress=lambda _days: seen.append(gc.get_threshold()))
    assert seen and set(seen) == {SIMULATION_THRESHOLDS}
    assert gc.get_threshold() == host_thresholds
