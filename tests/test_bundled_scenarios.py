"""pytest runs the bundled configuration's scenarios, the same ones `qaflow test` runs."""

from __future__ import annotations

import pytest

from engine.config.loader import bundled_config_dir, check_config
from engine.scenarios import load_scenarios, run_scenario

BUNDLED = bundled_config_dir()
# Read once at collection; problems are asserted below rather than breaking collection.
SCENARIOS, PROBLEMS = load_scenarios(BUNDLED)


@pytest.fixture(scope="module")
def definitions():
    definitions, problems = check_config(BUNDLED)
    assert definitions is not None, "\n".join(str(p) for p in problems)
    return definitions


def test_the_bundled_config_loads(definitions):
    assert definitions.root == str(BUNDLED)


def test_the_bundled_scenario_files_are_valid():
    errors = [str(p) for p in PROBLEMS if p.severity == "error"]
    assert errors == []


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[f"{s.file.rsplit('/', 1)[-1]}:{s.line} {s.name}" for s in SCENARIOS])
def test_bundled_scenario(scenario, definitions):
    result = run_scenario(scenario, definitions)
    assert result.passed, "\n".join(str(f) for f in result.failures)


def test_the_bundled_scenarios_run_every_transition_deadline_and_breach(definitions):
    """A path added to the bundled workflows without a scenario that runs it is caught here."""
    from engine.scenarios import coverage

    report = coverage([run_scenario(s, definitions) for s in SCENARIOS], definitions)
    missing = {w: {k: v for k, v in r["not_exercised"].items() if v} for w, r in report.items()}
    assert {w: m for w, m in missing.items() if m} == {}
    assert set(report) == set(definitions.workflows)
