"""Pins the `transitions` behaviour the engine relies on: one shared Machine, events fired on unregistered models."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
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


# ---------------------------------------------------------------------------------------------------
# The compiled plans against `transitions` itself, on every bundled workflow.

BUNDLED = Path(__file__).parent.parent.parent / "config"


class Recorder:
    """A stand-in for the engine's Context: guards answer from a drawn list, every step is written down."""

    def __init__(self, answers: list[bool]) -> None:
        self.answers = answers
        self.asked = 0
        self.log: list[tuple] = []

    def check_guard(self, transition) -> bool:
        answer = self.answers[self.asked % len(self.answers)] if self.answers else True
        self.asked += 1
        self.log.append(("guard", transition.index, answer))
        return answer

    def run_actions(self, actions, where: str) -> None:
        self.log.append(("actions", where, len(actions)))


@pytest.fixture(scope="module")
def bundled():
    return load_config(BUNDLED)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_the_compiled_plans_take_the_steps_transitions_takes(bundled, data):
    from engine.machine import fire_event, fire_with_transitions

    wid = data.draw(st.sampled_from(sorted(bundled.workflows)))
    wf = bundled.workflows[wid]
    events = sorted(wf.machine.events)
    state = wf.initial
    for _ in range(data.draw(st.integers(1, 12))):
        here = [k for k in events if wf.machine.events[k].transitions.get(state)]  # what transitions says applies
        event = data.draw(st.sampled_from(here) if here and data.draw(st.integers(0, 4)) else st.sampled_from(events))
        answers = data.draw(st.lists(st.booleans(), max_size=4))
        ours, theirs = Model(state), Model(state)
        mine, reference = Recorder(answers), Recorder(answers)
        moved = fire_event(wf.machine, ours, event, mine)
        assert moved == fire_with_transitions(wf.machine, theirs, event, reference)
        assert (ours.state, mine.log) == (theirs.state, reference.log), (wid, state, event)
        state = ours.state
