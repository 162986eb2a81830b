"""A simulation's report: the metrics of ``engine.reports`` over the simulated stores, plus the run's own facts.

The metrics are not computed here: ``engine.reports.metrics.compute_report`` reads the histories the
real Engine recorded, exactly as it would for a live system. This module adds what only the run
knows (seed, model, engine counts, behaviour rules the engine refused) under the key ``simulation``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .runner import SimulationResult

__all__ = ["FORMATS", "simulation_report", "render_simulation", "capacity_of"]

FORMATS = ("text", "json", "csv", "html", "markdown")


def capacity_of(result: SimulationResult) -> dict[str, float] | None:
    """Weekly capacity per person from the population, for workload metrics (None if nobody has one)."""
    out: dict[str, float] = {}
    for a in result.authorities:
        for person, cap in (a.capacity.get("people") or {}).items():
            out.setdefault(person, cap)
    return out or None


def simulation_report(result: SimulationResult, definitions: Any, *, level: str = "department") -> dict[str, Any]:
    """The report dict: ``engine.reports`` metrics for the period (if that module is present) + ``simulation``."""
    try:
        from ..reports.metrics import compute_report
    except ImportError:  # reports not installed: the run's own summary only
        return {"title": f"Simulation {result.model}", "simulation": result.summary()}
    report = compute_report(result.stores, definitions, start=result.start, end=result.end, level=level,
                            capacity=capacity_of(result))
    report = dict(report)
    report["simulation"] = result.summary()
    return report


def compare_simulations(a: Mapping[str, Any], b: Mapping[str, Any], labels: tuple[str, str]) -> dict[str, Any] | None:
    try:
        from ..reports.metrics import compare_reports
    except ImportError:
        return None
    return compare_reports(a, b, labels=labels)


def render_simulation(report: Mapping[str, Any], fmt: str, *, title: str, comparison: Mapping[str, Any] | None = None) -> str:
    """Render with ``engine.reports.render``; a short account of the run follows in text and Markdown."""
    try:
        from ..reports.render import render
    except ImportError:
        return json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"
    if "metrics" not in report:  # the fallback summary
        return json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"
    body = {k: v for k, v in report.items() if k != "simulation"} if fmt in ("csv", "html") else report
    text = render(body, fmt, title=title, comparison=comparison)
    sim = report.get("simulation")
    if sim and fmt in ("text", "markdown"):
        text = text.rstrip("\n") + "\n\n" + "\n".join(_run_lines(sim, markdown=fmt == "markdown")) + "\n"
    return text


def _run_lines(sim: Mapping[str, Any], *, markdown: bool) -> list[str]:
    eng = sim.get("engine") or {}
    head = "## Simulation" if markdown else "Simulation"
    bullet = "- " if markdown else "  "
    lines = [
        head,
        (f"{bullet}model '{sim.get('model')}', seed {sim.get('seed')}, simulated from {sim.get('simulated_from')} "
         f"(warm-up) to {sim.get('period', {}).get('to')}; authorities: {', '.join(sim.get('authorities') or [])}"),
        (f"{bullet}engine: {eng.get('events', 0)} history events; {eng.get('starts', 0)} instances started "
         f"({eng.get('allocated', 0)} audits allocated, {eng.get('arrivals', 0)} arrivals, {eng.get('planned', 0)} planned); "
         f"{eng.get('fires', 0)} triggers fired; {eng.get('breaches', 0)} deadlines passed"),
    ]
    if sim.get("unallocated"):
        lines.append(f"{bullet}selection could not allocate {sim['unallocated']} audit(s), e.g. "
                     + "; ".join(u.get("reason", "") for u in (sim.get("unallocated_examples") or [])[:3]))
    problems = sim.get("modelling_problems") or []
    if problems:
        lines.append(f"{bullet}modelling problems (behaviour rules the engine refused): {sum(p['count'] for p in problems)}")
        for p in problems[:20]:
            lines.append(f"{bullet}  {p['where']}: rule '{p['rule']}' firing '{p['trigger']}' in {p['workflow']}"
                         f"{'/' + p['state'] if p['state'] else ''}: {p['error']} x{p['count']}: {p['message']}")
    else:
        lines.append(f"{bullet}no modelling problems: the engine accepted every action the behaviour rules took")
    return lines
