"""The bundled service -> Head of Service map covers every service an audit can have, once."""

from __future__ import annotations

import pytest

from engine import load_config
from engine.config.loader import bundled_config_dir
from engine.rules import evaluate_table

DEFINITIONS = load_config(bundled_config_dir())
SERVICES = DEFINITIONS.workflows["case_audit"].fields["service"].enum or ()


def test_the_table_lists_exactly_the_services_of_case_audit():
    table = DEFINITIONS.tables["service_leads"]
    (service_input,) = table.inputs
    assert set(service_input.values or ()) == set(SERVICES)


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_has_one_head_of_service_and_one_director(service):
    # hit policy 'unique': two rows for one service would raise here
    leads = evaluate_table(DEFINITIONS.tables["service_leads"], {"service": service})
    assert leads["head_of_service"] and leads["service_director"]


def test_a_service_without_a_row_gets_nobody():
    assert evaluate_table(DEFINITIONS.tables["service_leads"], {"service": "youth_justice"}) == {
        "head_of_service": None, "service_director": None}
