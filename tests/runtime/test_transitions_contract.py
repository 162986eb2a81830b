"""Pins the `transitions` behaviour the engine relies on: one shared Machine, events fired on unregistered models."""

from __future__ import annotations

from pathlib import Path

import pytest
from transitions import Machine

from engine import Engine, load_config

FIXTURE = Path(__file__).parent.parent / "fixtures" / "basic"


class Model:
    __slots__ = ("state",)

    def __init__(self, state: str) -> None:
        self.state = state


def make_machine(**kwargs) -> Machine:
    machine = Machine(model=None, states=["a", "b", "c"], initial="a", auto_transitions=False, send_event=True, **kwargs)
    machine.add_transition("go", "a", "b", conditions=[lambda ev: ev.kwargs["ok"]])
    machine.add_transition("go", "a", "c")
    machine.add_transition("stay", "a", None)
    return machine


def test_event_trigger_works_on_a_model_the_machine_never_registered():
    machine = make_machine()
    first, second = Model("a"), Model("a")
    assert machine.events["go"].trigger(first, ok=True) is True
    assert machine.events["go"].trigger(second, ok=False) is True
    assert (first.state, second.state) == ("b", "c")  # conditions tried in the order added
    assert machine.models == []  # nothing was registered


def test_internal_transition_keeps_the_state_and_reports_success():
    machine = make_machine()
    model = Model("a")
    assert machine.events["stay"].trigger(model) is True
    assert model.state == "a"


def test_no_valid_transition_returns_false_when_invalid_triggers_are_ignored():
    machine = make_machine(ignore_invalid_triggers=True)
    model = Model("b")
    assert machine.events["go"].trigger(model, ok=True) is False
    assert model.state == "b"


def test_exceptions_in_callbacks_propagate_to_the_caller():
    machine = Machine(model=None, states=["a", "b"], initial="a", auto_transitions=False, send_event=True)

    def boom(event_data):
        raise RuntimeError("boom")

    machine.add_transition("go", "a", "b", before=[boom])
    model = Model("a")
    with pytest.raises(RuntimeError, match=r"^boom$"):  # not swallowed
        machine.events["go"].trigger(model)


def test_engine_keeps_one_machine_per_definition_and_registers_no_models():
    definitions = load_config(FIXTURE)
    eng = Engine(definitions)
    machine = definitions.workflows["review"].machine
    for i in range(20):
        eng.start("review", {"case_id": f"C-{i}", "reviewer": "R-01"}, actor="QA", roles=["qa_team"], at="2026-12-18")
    assert definitions.workflows["review"].machine is machine
    assert machine.models == []
    assert machine.auto_transitions is False
