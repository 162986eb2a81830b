"""The adapter to `transitions`: one shared Machine per workflow definition, and the plans compiled from it.

DESIGN.md has the measurements: a shared Machine firing events on models it does not know costs ~11 µs
an event and nothing per instance, where ``add_model`` costs kilobytes and grows quadratically.

``transitions`` decides what a workflow's state machine is: which transitions an event may take from a
state and in what order, and what runs when one is taken (its guard, then its actions, then the source
state's ``on_exit``, the state change and the destination's ``on_enter``; an internal transition, with
no destination, neither leaves nor enters). Each Machine is compiled once, when the definition is, into
a plan per (event, state) that walks exactly those steps, so an event does not pay for `transitions`'
generic machinery (event data, callback resolution, queueing, debug logging): about a tenth of the
engine's time per event. ``tests/runtime/test_transitions_contract.py`` fires random event sequences on
every bundled workflow through both and checks that they take the same transitions and run the same
steps in the same order; ``fire_with_transitions`` is the reference it compares with.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from transitions import Machine, State

if TYPE_CHECKING:  # pragma: no cover
    from .definitions import Action, TransitionDef, WorkflowDef
    from .runtime.context import Context

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


class Step(NamedTuple):
    """One transition an event may take from one state, with everything taking it runs, in order."""

    transition: TransitionDef
    guarded: bool  # check ``transition.guard`` first
    actions: tuple[Action, ...]  # the transition's own actions
    where: str  # how errors in them name the transition
    dest: str | None  # None: an internal transition (no exit, no enter)
    on_exit: tuple[Action, ...]  # the source state's, when the state changes
    exit_where: str
    on_enter: tuple[Action, ...]  # the destination's
    enter_where: str


class WorkflowMachine(Machine):
    """A `transitions` Machine (no models registered) that also holds its compiled plans."""

    plans: dict[tuple[str, str], tuple[Step, ...]]


def build_machine(wf: WorkflowDef) -> WorkflowMachine:
    """Build the shared state machine of one workflow definition (no models registered), and its plans."""
    states = []
    for name, spec in wf.states.items():
        states.append(
            State(
                name,
                on_enter=[_state_actions(name, "on_enter", spec.on_enter)] if spec.on_enter else None,
                on_exit=[_state_actions(name, "on_exit", spec.on_exit)] if spec.on_exit else None,
            )
        )
    machine = WorkflowMachine(
        model=None,
        states=states,
        initial=wf.initial,
        auto_transitions=False,
        send_event=True,
        ignore_invalid_triggers=True,
        model_attribute="state",
    )
    defs: dict[int, TransitionDef] = {}
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
        for source in t.sources:  # add_transition made one Transition per source, last in its list
            defs[id(machine.events[t.event_key].transitions[source][-1])] = t
    machine.plans = _compile(machine, wf, defs)
    return machine


def _compile(machine: Machine, wf: WorkflowDef, defs: dict[int, TransitionDef]) -> dict[tuple[str, str], tuple[Step, ...]]:
    """Each (event, state)'s transitions in the order the Machine tries them, as steps."""
    plans: dict[tuple[str, str], tuple[Step, ...]] = {}
    for key, event in machine.events.items():
        for source, found in event.transitions.items():
            steps = []
            for tr in found:
                t = defs[id(tr)]
                dest = tr.dest or None
                steps.append(Step(
                    transition=t,
                    guarded=bool(tr.conditions),
                    actions=t.actions,
                    where=f"transition {t.index}",
                    dest=dest,
                    on_exit=wf.states[source].on_exit if dest is not None else (),
                    exit_where=f"on_exit {source}",
                    on_enter=wf.states[dest].on_enter if dest is not None else (),
                    enter_where=f"on_enter {dest}",
                ))
            if steps:
                plans[(key, source)] = tuple(steps)
    return plans


def fire_event(machine: WorkflowMachine, model: Any, event_key: str, ctx: Context) -> bool:
    """Fire ``event_key`` on ``model`` (any object with a ``state`` attribute); True if a transition ran."""
    steps = machine.plans.get((event_key, model.state))
    if steps is None:
        return False
    for step in steps:
        if step.guarded and not ctx.check_guard(step.transition):
            continue
        if step.actions:
            ctx.run_actions(step.actions, step.where)
        if step.dest is not None:
            if step.on_exit:
                ctx.run_actions(step.on_exit, step.exit_where)
            model.state = step.dest
            if step.on_enter:
                ctx.run_actions(step.on_enter, step.enter_where)
        return True
    return False


def fire_with_transitions(machine: Machine, model: Any, event_key: str, ctx: Context) -> bool:
    """The same as ``fire_event``, through `transitions`' own ``Event.trigger``: the reference the plans are checked against."""
    return machine.events[event_key].trigger(model, ctx=ctx)
