"""Indicator rules: a programme KPI that stays red (or falls behind a benchmark) proposes a targeted audit.

The rules are in the rules' ``indicator_rules`` section (config/rules/kpis.yaml, docs/kpis.md). ``check_indicators``
reads each programme KPI month by month (engine.reports.metrics.programme_kpi_months) and, for every rule whose
last ``months`` months with a figure all match, starts a thematic audit as the engine in state ``proposed``: its
``reason`` and ``proposal`` name the rule, the indicator, the months and the figures, and the workflow alerts the
service manager, who accepts it (it joins the next programme month, engine.programmes) or declines it.

Idempotent: one run of matching months (named by its first month) proposes once, however often the check runs
and whether the proposal was since accepted, declined or cancelled; a month that breaks the run starts a new one.
While a proposal for the same service and KPI is still awaiting a decision or its month, no other rule adds one.

    from engine.kpis.watch import check_indicators
    result = check_indicators(engine, at="2027-01-05T09:00", kpis={"return_home_interviews_offered_in_72_hours"})
    [p.instance_id for p in result.proposed]
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..clock import as_time
from ..definitions import Definitions
from ..errors import Refused, RequestIdReused
from ..reports.blocks import fmt_number, target_text

__all__ = ["IndicatorRule", "Proposal", "WatchResult", "check_indicators", "indicator_rules"]

PROPOSAL_WORKFLOW = "thematic_audit"
DEFAULT_SAMPLE = 6
WAITING = ("proposed", "accepted")  # a proposal still awaiting its decision or its programme month
MONTHS_READ = 12


@dataclass(frozen=True)
class IndicatorRule:
    """One rule of ``indicator_rules``, compiled."""

    id: str
    title: str
    months: int
    status: tuple[str, ...] = ()  # the month counts when its RAG status is one of these ...
    worse_than: str = ""  # ... or when the figure is worse than this benchmark
    by: float = 0.0  # ... by more than this
    kpis: tuple[str, ...] = ()  # only these KPIs (empty: all)
    propose: str = PROPOSAL_WORKFLOW
    sample_size: int = DEFAULT_SAMPLE
    source: str = ""

    def matches(self, month: Mapping[str, Any], direction: str) -> bool:
        if self.status:
            return month.get("status") in self.status
        value, mark = month.get("value"), (month.get("benchmarks") or {}).get(self.worse_than)
        if value is None or mark is None:
            return False
        gap = value - mark if direction == "lower_is_better" else mark - value
        return gap > self.by + 1e-9


def indicator_rules(definitions: Definitions) -> tuple[IndicatorRule, ...]:
    """The configuration's indicator rules, in the order written (the rules schema checks their shape)."""
    raw = definitions.extra.get("indicator_rules") or {}
    out = []
    for rid, spec in raw.items() if isinstance(raw, Mapping) else ():
        if not isinstance(spec, Mapping):
            continue
        out.append(IndicatorRule(
            id=str(rid), title=str(spec.get("title", rid)), months=int(spec.get("months", 1)),
            status=tuple(spec.get("status") or ()), worse_than=str(spec.get("worse_than") or ""), by=float(spec.get("by") or 0),
            kpis=tuple(spec.get("kpis") or ()), propose=str(spec.get("propose") or PROPOSAL_WORKFLOW),
            sample_size=int(spec.get("sample_size") or DEFAULT_SAMPLE), source=str(spec.get("source") or ""),
        ))
    return tuple(out)


@dataclass(frozen=True)
class Proposal:
    """What one rule found for one programme KPI, and what became of it."""

    rule: str
    programme: str
    service: str
    kpi: str
    months: tuple[str, ...]
    figures: tuple[float | None, ...]
    reason: str
    outcome: str  # proposed | already_proposed | waiting (another proposal for the KPI awaits a decision) | failed
    instance_id: str = ""
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "programme": self.programme, "service": self.service, "kpi": self.kpi, "months": list(self.months),
                "figures": list(self.figures), "reason": self.reason, "outcome": self.outcome, "instance": self.instance_id,
                **({"error": self.error} if self.error else {})}


@dataclass
class WatchResult:
    checked: int = 0  # programme KPIs read
    found: list[Proposal] = field(default_factory=list)

    @property
    def proposed(self) -> list[Proposal]:
        return [p for p in self.found if p.outcome == "proposed"]

    def summary(self) -> str:
        new = len(self.proposed)
        known = sum(1 for p in self.found if p.outcome in ("already_proposed", "waiting"))
        return (f"indicator rules: {self.checked} programme KPI(s) read; {new} targeted audit(s) proposed"
                + (f", {known} already proposed" if known else ""))

    def lines(self) -> list[str]:
        out = []
        for p in self.found:
            what = {"proposed": f"proposed {p.instance_id}", "already_proposed": f"already proposed ({p.instance_id})",
                    "waiting": f"a proposal for it awaits a decision ({p.instance_id})", "failed": f"could not propose: {p.error}"}[p.outcome]
            out.append(f"{p.programme} {p.kpi}: {p.rule} ({', '.join(p.months)}): {what}")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"checked": self.checked, "found": [p.to_dict() for p in self.found]}


def _shown(value: float | None, unit: str) -> str:
    if value is None:
        return "no figure"
    return f"{fmt_number(value)}%" if unit == "percent" else fmt_number(value)


def _run(rule: IndicatorRule, months: list[Mapping[str, Any]], direction: str) -> list[Mapping[str, Any]]:
    """The run of matching months that ends with the last month, if it is at least ``rule.months`` long."""
    run: list[Mapping[str, Any]] = []
    for month in reversed(months):
        if not rule.matches(month, direction):
            break
        run.insert(0, month)
    return run if len(run) >= rule.months else []


def _reason(rule: IndicatorRule, kpi: Mapping[str, Any], run: list[Mapping[str, Any]]) -> str:
    unit = str(kpi["unit"])
    figures = ", ".join(f"{m['month']} {_shown(m['value'], unit)}" for m in run)
    tail = f"target {target_text(kpi['target'], kpi['direction'], unit)}" if kpi.get("target") is not None else "no target"
    if rule.worse_than:
        marks = ", ".join(f"{m['month']} {_shown((m.get('benchmarks') or {}).get(rule.worse_than), unit)}" for m in run)
        tail += f"; {rule.worse_than.replace('_', ' ')}: {marks}"
    where = f" ({kpi['level_id']})" if kpi.get("level_id") else ""
    more = f" ({len(run)} months in a row)" if len(run) > rule.months else ""
    return f"{kpi['title']}{where}: {rule.title}{more}: {figures} ({tail})."


def _first_of_next_month(day: dt.date) -> str:
    return (dt.date(day.year + (day.month == 12), day.month % 12 + 1, 1)).isoformat()


def _waiting(engine: Any, service: str, kpi: str) -> str:
    """The id of a proposal for this service and KPI still awaiting its decision or its month, if any."""
    for state in WAITING:
        for view in engine.instances(PROPOSAL_WORKFLOW, state):
            proposal = view.data.get("proposal") or {}
            if view.data.get("service") == service and proposal.get("kpi") == kpi:
                return str(view.id)
    return ""


def check_indicators(engine: Any, *, at: Any = None, kpis: Iterable[str] | None = None, stores: Any = None,
                     report: Any = None) -> WatchResult:
    """Apply every indicator rule to the programmes' KPIs as they stand at ``at`` (default: the engine's clock)
    and propose a targeted audit for each run of matching months not proposed before. ``kpis``: only these
    (``qaflow kpi import`` passes the KPIs it stored). ``stores``: where the figures and history are read
    (default: the engine's store). Returns what was found and done."""
    from ..reports.metrics import programme_kpi_months
    from ..runtime.engine import start_as_engine

    when = as_time(at) if at is not None else engine.clock.now()
    rules = indicator_rules(engine.definitions)
    result = WatchResult()
    if not rules:
        return result
    wanted = set(kpis) if kpis is not None else None
    rows = programme_kpi_months(stores if stores is not None else engine.store, engine.definitions, at=when.date(), months=MONTHS_READ,
                                kpis=wanted, report=report)
    for kpi in rows:
        result.checked += 1
        for rule in rules:
            if rule.kpis and kpi["kpi"] not in rule.kpis:
                continue
            run = _run(rule, kpi["months"], str(kpi["direction"]))
            if not run:
                continue
            months = tuple(m["month"] for m in run)
            figures = tuple(m["value"] for m in run)
            reason = _reason(rule, kpi, run)
            found: dict[str, Any] = {"rule": rule.id, "programme": kpi["programme"], "service": kpi["service"], "kpi": kpi["kpi"],
                                     "months": months, "figures": figures, "reason": reason}
            request_id = f"indicator:{rule.id}:{kpi['service']}:{kpi['kpi']}:{months[0]}"
            first = engine.store.request(request_id)
            if first is not None:
                result.found.append(Proposal(**found, outcome="already_proposed", instance_id=first.instance_id))
                continue
            other = _waiting(engine, kpi["service"], kpi["kpi"])
            if other:
                result.found.append(Proposal(**found, outcome="waiting", instance_id=other))
                continue
            data = {
                "theme": str(kpi["title"]),
                "service": kpi["service"],
                "lead": kpi["service_manager"] or "service_manager",
                "month": _first_of_next_month(when.date()),
                "programme": kpi["programme"],
                "sample_size": rule.sample_size,
                "reason": reason,
                "proposal": {
                    "rule": rule.id, "rule_title": rule.title, "kpi": kpi["kpi"], "kpi_title": kpi["title"], "programme": kpi["programme"],
                    "level": kpi["level"], "level_id": kpi["level_id"], "months": list(months), "figures": list(figures),
                    "benchmarks": [m.get("benchmarks") or {} for m in run], "target": kpi["target"], "unit": kpi["unit"],
                    "direction": kpi["direction"], "proposed_on": when.date().isoformat(),
                },
            }
            try:
                view = start_as_engine(engine, rule.propose, data, at=when, request_id=request_id)
            except RequestIdReused:
                prior = engine.store.request(request_id)
                result.found.append(Proposal(**found, outcome="already_proposed", instance_id=prior.instance_id if prior else ""))
                continue
            except Refused as exc:
                result.found.append(Proposal(**found, outcome="failed", error=exc.message))
                continue
            result.found.append(Proposal(**found, outcome="proposed", instance_id=view.id))
    return result
