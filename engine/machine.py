"""The adapter to `transitions`: one shared Machine per workflow definition, fired on unregistered models.

DESIGN.md has the measurements: a shared Machine firing events on models it does not know costs ~11 µs
an event and nothing per instance, where ``add_model`` costs kilobytes and grows quadratically. This relies
on ``Event.trigger(model, ...)`` working for a model the Machine never registered; tests/runtime pin it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from transitions import Machine, State

if TYPE_CHECKING:  # pragma: no cover
    from .definitions import TransitionDef, WorkflowDef
    from .runtime.context import Context

# At INFO transitions logs every state entry, tripling the cost of an event. qaflow leaves other
# libraries' loggers as the host set them (by default WARNING): the README says to keep this one there.


def _ctx(event_data: Any) -> Context:
    return event_data.kwargs["ctx"]


def _guard(transition: TransitionDef):
    def check(event_data: Any) -> bool:
        return _ctx(event_data).check_guard(transition)

    return check


def _transition_actions(transition: TransitionDef):
    def run(event_data: Any) -> None:
        _ctx(event_data).run_actions(transition.actions, f"transition {transition.index}")

    return run


def _state_actions(state: str, hook: str, actions: tuple):
    def run(event_data: Any) -> None:
        _ctx(event_data).run_actions(actions, f"{hook} {state}")

    return run


def build_machine(wf: WorkflowDef) -> Machine:
    """Build the shared state machine of one workflow definition (no models registered)."""
    states = []
    for name, spec in wf.states.items():
        states.append(
            State(
                name,
                on_enter=[_state_actions(name, "on_enter", spec.on_enter)] if spec.on_enter else None,
                on_exit=[_state_actions(name, "on_exit", spec.on_exit)] if spec.on_exit else None,
            )
        )
    machine = Machine(
        model=None,
        states=states,
        initial=wf.initial,
        auto_transitions=False,
        send_event=True,
        ignore_invalid_triggers=True,
        model_attribute="state",
    )
    for t in wf.transitions:
        if not t.sources:
            continue
        machine.add_transition(
            t.event_key,
            list(t.sources),
            t.dest,  # None: an internal transition (no exit/enter)
            conditions=[_guard(t)] if t.guard is not None else None,
            before=[_transition_actions(t)] if t.actions else None,
        )
    return machine


def fire_event(machine: Machine, model: Any, event_key: str, ctx: Context) -> bool:
    """Fire ``event_key`` on ``model`` (any object with a ``state`` attribute); True if a transition ran."""
    return machine.events[event_key].trigger(model, ctx=ctx)
