"""Impact of a configuration change: replay a store's history under the current and a new configuration, and compare.

    from engine import load_config
    from engine.impact import impact, render_text
    from engine.store.open import open_store
    store = open_store("qa.db", readonly=True)      # only read
    report = impact(store, load_config("config"), load_config("config-new"))
    report.totals                                   # deadlines moved, now late, events refused, alerts, KPIs...
    report.now_late()                               # [(instance, deadline change), ...]
    print(render_text(report))                      # or render_html(report), report.to_dict()

Names are imported lazily, so that the CLI can register its commands without loading the runtime.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_EXPORTS = {
    "impact": "engine.impact.compare",
    "compare": "engine.impact.compare",
    "ImpactReport": "engine.impact.compare",
    "InstanceImpact": "engine.impact.compare",
    "DeadlineChange": "engine.impact.compare",
    "DeadlineSide": "engine.impact.compare",
    "EventChange": "engine.impact.compare",
    "AlertChange": "engine.impact.compare",
    "KpiChange": "engine.impact.compare",
    "read_history": "engine.impact.replay",
    "replay": "engine.impact.replay",
    "Recorded": "engine.impact.replay",
    "RecordedEvent": "engine.impact.replay",
    "Replay": "engine.impact.replay",
    "Outcome": "engine.impact.replay",
    "render_text": "engine.impact.render",
    "render_html": "engine.impact.render",
}

__all__ = [
    "impact", "compare", "ImpactReport", "InstanceImpact", "DeadlineChange", "DeadlineSide", "EventChange", "AlertChange",
    "KpiChange", "read_history", "replay", "Recorded", "RecordedEvent", "Replay", "Outcome", "render_text", "render_html",
]

if TYPE_CHECKING:  # the same names, for type checkers and editors (tests/test_api.py keeps the two in step)
    from .compare import (
        AlertChange,
        DeadlineChange,
        DeadlineSide,
        EventChange,
        ImpactReport,
        InstanceImpact,
        KpiChange,
        compare,
        impact,
    )
    from .render import render_html, render_text
    from .replay import Outcome, Recorded, RecordedEvent, Replay, read_history, replay


__getattr__, __dir__ = lazy_exports("engine.impact", _EXPORTS, globals())
