"""Fixtures for the report tests: the bundled configuration and the hand-dated world of report_world.py."""

from __future__ import annotations

import pytest
from report_world import CONFIG, build_world

from engine import load_config


@pytest.fixture(scope="session")
def definitions():
    return load_config(CONFIG)


@pytest.fixture(scope="session")
def world(definitions):
    return build_world(definitions)
