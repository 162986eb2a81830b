"""The order a replay takes recorded events in: time order across instances, each instance's own order kept."""

from __future__ import annotations

import datetime as dt
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.impact.replay import RecordedEvent, _merge
from engine.runtime.instance import Instance

T0 = dt.datetime(2026, 10, 1, 9, tzinfo=dt.UTC)

# per instance: a depth (0 root, 1 child...) and its events' minutes after T0, in the order recorded
histories = st.lists(st.tuples(st.integers(0, 2), st.lists(st.integers(0, 30), min_size=1, max_size=6)), min_size=1, max_size=6)


def queues(spec, *, backdated: bool):
    out, instances, depth = {}, {}, {}
    for n, (d, minutes) in enumerate(spec):
        iid = f"w-{n:06d}"
        times = minutes if backdated else sorted(minutes)
        out[iid] = [RecordedEvent(T0 + dt.timedelta(minutes=m), iid, iid, "fire", "w", f"t{i}", {}, "P-1", ())
                    for i, m in enumerate(times)]
        instances[iid] = Instance(iid, "w", 1, "s", {}, created_at=T0 + dt.timedelta(seconds=n))
        depth[iid] = d
    return out, instances, depth


@settings(max_examples=200, deadline=None)
@given(histories)
def test_events_in_time_order_each_instance_in_its_own_order(spec):
    qs, instances, depth = queues(spec, backdated=False)
    merged = _merge(qs, instances, depth)
    assert sorted(merged, key=id) == sorted((e for q in qs.values() for e in q), key=id)  # every event, once
    assert [e.at for e in merged] == sorted(e.at for e in merged)
    for iid, q in qs.items():
        assert [e for e in merged if e.instance == iid] == q
    for a, b in itertools.pairwise(merged):
        if a.at == b.at and a.instance != b.instance:  # at the same moment: parents (shallower) first
            assert depth[a.instance] <= depth[b.instance]


@settings(max_examples=200, deadline=None)
@given(histories)
def test_a_backdated_event_stays_after_the_one_recorded_before_it(spec):
    qs, instances, depth = queues(spec, backdated=True)
    merged = _merge(qs, instances, depth)
    assert len(merged) == sum(len(q) for q in qs.values())
    for iid, q in qs.items():
        assert [e for e in merged if e.instance == iid] == q
