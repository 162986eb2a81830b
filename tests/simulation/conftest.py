"""Shared fixtures: the bundled configuration, its selection rules and programmes."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import load_config

CONFIG = Path(__file__).resolve().parents[2] / "config"


@pytest.fixture(scope="session")
def definitions():
    return load_config(CONFIG)


@pytest.fixture(scope="session")
def rules(definitions):
    from engine.allocation import SelectionRules

    return SelectionRules.from_definitions(definitions)


@pytest.fixture(scope="session")
def programmes():
    from engine.allocation import load_programmes

    found, problems = load_programmes(CONFIG)
    assert not [p for p in problems if p.severity == "error"], problems
    return found
