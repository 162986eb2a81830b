"""Listeners hear every committed change, and only committed ones; the engine leaves other loggers alone."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from engine import Change, Engine, GuardFailed, load_config

FIXTURE = Path(__file__).parent.parent / "fixtures" / "basic"


@pytest.fixture(scope="module")
def definitions():
    return load_config(FIXTURE)


def test_a_listener_hears_each_accepted_call_after_it_is_committed(definitions):
    heard: list[Change] = []
    eng = Engine(definitions)

    def listener(change: Change) -> None:
        for iid in change.instances:  # already committed: the store has it
            assert eng.get(iid).rev >= 1
        heard.append(change)

    eng.listeners.append(listener)
    review = eng.start("review", {"case_id": "C-1", "reviewer": "R-01"}, actor="QA-01", roles=["qa_team"], at="2026-12-18T09:00")
    (started,) = heard
    assert started.instances == (review.id,)
    assert [h["trigger"] for h in started.history] == ["(start)"]
    assert [(d["name"], d["status"], d["due"]) for d in started.deadlines] == [("response", "open", "2027-01-06")]

    with pytest.raises(GuardFailed):
        eng.fire(review.id, "note", {"text": "x", "ok": False}, actor="R-01", at="2026-12-21")
    assert len(heard) == 1  # a refused call changed nothing and is not heard

    eng.advance("2027-01-08")
    breach = heard[-1]
    assert [h["trigger"] for h in breach.history] == ["(breach) response"]
    assert [a["name"] for a in breach.alerts] == ["response_overdue"]
    assert breach.deadlines[0]["status"] == "breached"


def test_a_failing_listener_is_logged_and_the_others_still_hear(definitions, caplog):
    heard: list[Change] = []

    def broken(change: Change) -> None:
        raise RuntimeError("the host's queue is down")

    eng = Engine(definitions, listeners=[broken, heard.append])
    with caplog.at_level(logging.ERROR, logger="qaflow"):
        view = eng.start("review", {"case_id": "C-1", "reviewer": "R-01"}, actor="QA-01", roles=["qa_team"], at="2026-12-18T09:00")
    assert view.state == "open" and len(heard) == 1
    (record,) = caplog.records
    assert record.name == "qaflow" and "the change stands" in record.getMessage()
    assert "the host's queue is down" in caplog.text


def test_importing_the_engine_leaves_other_libraries_loggers_alone():
    code = (
        "import logging; logging.getLogger('transitions').setLevel(logging.INFO);"
        "from engine import Engine, load_config; import engine.machine, engine.runtime.engine;"
        "print(logging.getLogger('transitions').level, logging.getLogger('qaflow').handlers)"
    )
    out = subprocess.check_output([sys.executable, "-c", code], text=True).strip()
    assert out.startswith(f"{logging.INFO} [<NullHandler")
