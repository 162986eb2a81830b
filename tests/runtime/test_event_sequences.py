"""Property tests: any sequence of calls leaves instances consistent, and refused calls change nothing."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import Engine, EvaluationFailed, Refused, load_config

FIXTURE = Path(__file__).parent.parent / "fixtures" / "basic"
DEFINITIONS = load_config(FIXTURE)
START = dt.datetime(2026, 12, 14, 9, 0, tzinfo=dt.UTC)  # UTC: adding hours never lands in a clock change

ACTORS = [("R-01", ()), ("MGR-1", ("manager",)), ("QA-01", ("qa_team",)), ("CH-1", ("checker",)), ("X", ())]
PAYLOADS = [
    {},
    {"grade": "good"},
    {"grade": "bad"},
    {"grade": "excellent"},
    {"text": "n", "ok": True},
    {"text": "n", "ok": False},
    {"reason": "advocate"},
    {"reason": ""},
    {"result": "fine"},
]
TRIGGERS = ["grade", "note", "pause", "resume", "extend", "explode", "close", "child_done", "record", "nope"]

call = st.one_of(
    st.tuples(
        st.just("fire"),
        st.integers(0, 3),  # which instance (children included)
        st.sampled_from(TRIGGERS),
        st.sampled_from(PAYLOADS),
        st.sampled_from(ACTORS),
        st.integers(0, 36),  # hours later
    ),
    st.tuples(st.just("advance"), st.integers(1, 30)),  # days later
)


def state_of(eng: Engine) -> dict:
    return {
        i.id: (i.state, i.data, [d.to_dict() for d in i.deadlines], i.children, len(eng.history(i.id)))
        for i in eng.instances()
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(call, max_size=25))
def test_random_call_sequences_keep_every_instance_consistent(calls):
    eng = Engine(DEFINITIONS)
    now = START
    eng.start("review", {"case_id": "C-1", "reviewer": "R-01"}, actor="QA-01", roles=["qa_team"], at=now)
    breaches: list[tuple[str, str]] = []
    for c in calls:
        if c[0] == "advance":
            now += dt.timedelta(days=c[1])
            fired = eng.advance(now)
            assert [o.at for o in fired] == sorted(o.at for o in fired)
            breaches += [(o.instance_id, o.name) for o in fired if o.kind == "breach"]
            continue
        _, which, trigger, payload, (actor, roles), hours = c
        now += dt.timedelta(hours=hours)
        ids = sorted(i.id for i in eng.instances())
        target = ids[which % len(ids)]
        before = state_of(eng)
        outbox = eng.outbox(include_acknowledged=True)
        try:
            eng.fire(target, trigger, payload, actor=actor, roles=roles, at=now)
        except (Refused, EvaluationFailed):  # a refusal, or a call the configuration cannot decide
            assert state_of(eng) == before  # nothing changed anywhere
            assert eng.outbox(include_acknowledged=True) == outbox

    # each deadline breached at most once (restarts aside, this fixture never restarts one)
    assert len(breaches) == len(set(breaches))
    for view in eng.instances():
        history = eng.history(view.id)
        assert history[0]["trigger"] == "(start)"
        assert history[-1]["to"] == view.state  # the snapshot agrees with the history
        for earlier, later in itertools.pairwise(history):
            assert later["from"] == earlier["to"]
        wf = DEFINITIONS.workflows[view.workflow]
        assert view.state in wf.states
        for deadline in view.deadlines:
            assert deadline.status in {"open", "paused", "breached", "met", "cancelled"}
            # the explanation ends with the due date the deadline actually has
            last = [line for line in deadline.explanation if "due by the end of" in line][-1]
            assert deadline.due.strftime("%a %-d %b %Y") in last
