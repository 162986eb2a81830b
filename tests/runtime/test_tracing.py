"""OpenTelemetry spans around start, fire and advance, once the host sets a tracer provider.

Run in a child process: a tracer provider is set once per process, and the other tests must not be traced.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

FIXTURE = Path(__file__).parent.parent / "fixtures" / "basic"

CHILD = """
import json, sys
from engine import Engine, GuardFailed, load_config

defs = load_config(sys.argv[1])
untraced = Engine(defs)  # made before the host sets its provider: no spans, no cost (its own store)
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
untraced.start("review", {"case_id": "C-0", "reviewer": "R-01"}, actor="QA-01", at="2026-12-18T09:00")

eng = Engine(defs)
review = eng.start("review", {"case_id": "C-1", "reviewer": "R-01"}, actor="QA-01", roles=["qa_team"], at="2026-12-18T09:00")
try:
    eng.fire(review.id, "note", {"text": "x", "ok": False}, actor="R-01", at="2026-12-21")
except GuardFailed:
    pass
eng.advance("2027-01-08")
print(json.dumps([{"name": s.name, **dict(s.attributes)} for s in exporter.get_finished_spans()]))
"""


def test_each_call_is_one_span_without_the_actor_or_the_data():
    out = subprocess.check_output([sys.executable, "-c", CHILD, str(FIXTURE)], text=True)
    spans = json.loads(out)
    assert [s["name"] for s in spans] == ["qaflow.start", "qaflow.fire", "qaflow.advance"]
    start, fire, advance = spans
    assert start == {"name": "qaflow.start", "qaflow.workflow": "review", "qaflow.outcome": "ok",
                     "qaflow.instance": "review-000001", "qaflow.state": "open"}
    assert fire["qaflow.trigger"] == "note" and fire["qaflow.outcome"] == "GuardFailed"
    assert advance["qaflow.fired"] == 1
    assert "R-01" not in out and "QA-01" not in out and "C-1" not in out  # no actor, no data
