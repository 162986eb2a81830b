"""Programme delivery: each programme's planned work, started month by month, each item exactly once.

A service area's quarterly programme (config/programmes/*.yaml) plans targeted audits for given months
(``targeted_audits``: thematic audits, multi-agency audits). ``start_programme_month`` starts, as the engine,
every targeted audit planned for the month in every programme whose quarter holds it, and joins each
proposed thematic audit the service manager accepted before the month (engine.kpis.watch) to that month of its
service's programme. Each planned item is started under a request id of its own (``programme:PROGRAMME:ITEM``),
so running the month twice, or from two hosts at once, starts it once; a proposal joins once because joining
moves it on. In a programme's first month it also starts the quarterly QA report of the programme
(qa_report_cycle.yaml: due on its ``reporting.report_due``, to the Senior Leadership Team, then the forums of its
``report_to``), and every month the monthly managers' briefing (managers_briefing.yaml). Surveys are sent at
their point in the child's journey (a case closing, a conference) by whoever holds the case: the month starts
none of them, and the report counts what was sent against the plan.

    from engine.programmes import start_programme_month
    result = start_programme_month(engine, "2026-11", at="2026-11-02T08:00")
    result.summary(), [s.instance_id for s in result.started]
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .clock import as_time
from .definitions import Definitions
from .errors import ConcurrencyConflict, Refused, RequestIdReused, UsageError
from .problems import Problem

__all__ = ["PlannedItem", "ProgrammeMonth", "check_programme_reporting", "join_proposals", "planned_data", "programmes_in",
           "start_programme_month"]

PROPOSAL_WORKFLOW = "thematic_audit"
SLT = "senior_leadership_team"


@dataclass(frozen=True)
class PlannedItem:
    """One entry of a programme's plan for a month, and what starting it did."""

    programme: str
    item: str  # the entry's id, or the proposal's instance id
    workflow: str
    title: str
    outcome: str  # started | already_started | joined | waiting | failed
    instance_id: str = ""
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"programme": self.programme, "item": self.item, "workflow": self.workflow, "title": self.title, "outcome": self.outcome,
                "instance": self.instance_id, **({"error": self.error} if self.error else {})}


@dataclass
class ProgrammeMonth:
    month: str  # YYYY-MM
    programmes: list[str] = field(default_factory=list)
    items: list[PlannedItem] = field(default_factory=list)

    def _with(self, outcome: str) -> list[PlannedItem]:
        return [i for i in self.items if i.outcome == outcome]

    @property
    def started(self) -> list[PlannedItem]:
        return self._with("started")

    @property
    def joined(self) -> list[PlannedItem]:
        return self._with("joined")

    @property
    def failed(self) -> list[PlannedItem]:
        return self._with("failed")

    def summary(self) -> str:
        if not self.programmes:
            return f"{self.month}: no programme's quarter holds this month; nothing started"
        parts = [f"{len(self.started)} planned item(s) started", f"{len(self.joined)} accepted proposal(s) joined"]
        already = self._with("already_started")
        if already:
            parts.append(f"{len(already)} started before")
        if self.failed:
            parts.append(f"{len(self.failed)} could not be started")
        return f"{self.month} ({len(self.programmes)} programme(s)): " + ", ".join(parts)

    def lines(self) -> list[str]:
        words = {"started": "started", "already_started": "already started", "joined": "joined this month",
                 "waiting": "accepted, waiting: no programme of its service this month", "failed": "could not be started"}
        out = []
        for i in self.items:
            error = f": {i.error}" if i.error else ""
            out.append(f"{i.programme or '-'}  {i.item}  {i.title}: {words[i.outcome]}{f' ({i.instance_id})' if i.instance_id else ''}{error}")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"month": self.month, "programmes": list(self.programmes), "items": [i.to_dict() for i in self.items]}


def check_programme_reporting(definitions: Definitions) -> list[Problem]:
    """A programme's quarterly report goes to the Senior Leadership Team first: a ``report_to`` without it (straight to the
    Improvement Board, say) is an error at its line and column."""
    from .kpis.catalogue import programme_documents

    problems = []
    for doc, data in programme_documents(definitions.root):
        reporting = data.get("reporting")
        forums = reporting.get("report_to") if isinstance(reporting, Mapping) else None
        if isinstance(forums, list) and SLT not in forums:
            problems.append(Problem(doc.location(("reporting", "report_to")), "error", "report-skips-slt",
                                    f"the quarterly report goes to the Senior Leadership Team before {', '.join(map(str, forums)) or 'any forum'}: "
                                    "add senior_leadership_team to report_to (framework document: quarterly overview reports are fed into the "
                                    "Senior Leadership Team)"))
    return problems


def _month(text: Any) -> dt.date:
    try:
        first = dt.date.fromisoformat(f"{text}-01") if isinstance(text, str) and len(text) == 7 else None
    except ValueError:
        first = None
    if first is None:
        raise UsageError(f"a month is written YYYY-MM (e.g. 2026-11), not {text!r}")
    return first


def programmes_in(definitions: Definitions, month: Any, *, report: Any = None) -> list[Any]:
    """The programmes (engine.reports.definition.Programme) whose quarter holds ``month`` (YYYY-MM)."""
    from .reports.definition import load_report

    first = _month(month)
    return [p for p in load_report(definitions, report).programmes
            if dt.date.fromisoformat(p.start) <= first <= dt.date.fromisoformat(p.end)]


def planned_data(programme: Any, entry: Mapping[str, Any]) -> dict[str, Any] | None:
    """The start data of a programme's targeted audit, by its workflow; None for a workflow it does not know."""
    workflow = entry.get("workflow")
    if workflow == "thematic_audit":
        data = {"theme": entry.get("theme"), "service": programme.service,
                "lead": entry.get("lead") or programme.service_manager, "month": f"{entry.get('month')}-01",
                "programme": programme.id, "sample_size": entry.get("sample_size"), "reason": entry.get("reason")}
    elif workflow == "multi_agency_audit":
        data = {"topic": entry.get("theme"), "reason": entry.get("reason"), "agencies": entry.get("agencies"),
                "selected_on": f"{entry.get('month')}-01"}
    else:
        return None
    return {k: v for k, v in data.items() if v is not None}


def _quarter(prog: Any) -> str:
    """FY2026/27-Q3 for a programme of Oct-Dec 2026 (quarters counted from April)."""
    start = dt.date.fromisoformat(prog.start)
    year = start.year if start.month >= 4 else start.year - 1
    return f"FY{year}/{(year + 1) % 100:02d}-Q{(start.month - 4) % 12 // 3 + 1}"


def _start(engine: Any, result: ProgrammeMonth, programme: str, item: str, workflow: str, title: str, data: dict[str, Any], when: Any,
           request_id: str | None = None) -> None:
    """Start one piece of planned work as the engine under its own request id, once, and say what happened."""
    from .runtime.engine import start_as_engine

    request_id = request_id or f"programme:{programme}:{item}"
    earlier = engine.store.request(request_id)
    if earlier is not None:
        result.items.append(PlannedItem(programme, item, workflow, title, "already_started", earlier.instance_id))
        return
    try:
        view = start_as_engine(engine, workflow, data, at=when, request_id=request_id)
    except RequestIdReused:  # started before, and the entry was edited since
        earlier = engine.store.request(request_id)
        result.items.append(PlannedItem(programme, item, workflow, title, "already_started", earlier.instance_id if earlier else ""))
        return
    except Refused as exc:
        result.items.append(PlannedItem(programme, item, workflow, title, "failed", error=exc.message))
        return
    result.items.append(PlannedItem(programme, item, workflow, title, "started", view.id))


def start_programme_month(engine: Any, month: str, *, at: Any = None, report: Any = None) -> ProgrammeMonth:
    """Start the month's planned work of every programme whose quarter holds ``month`` (YYYY-MM), as the engine:
    its targeted audits planned for that month, and the proposed thematic audits of its service accepted before
    the month begins. At ``at`` (default: the engine's clock). Exactly once: a second run reports what the
    first started (``already_started``) and starts nothing more."""
    first = _month(month)
    when = as_time(at) if at is not None else engine.clock.now()
    result = ProgrammeMonth(month)
    progs = programmes_in(engine.definitions, month, report=report)
    result.programmes = [p.id for p in progs]
    for prog in progs:
        for entry in prog.targeted_audits:
            if not isinstance(entry, Mapping) or str(entry.get("month")) != month:
                continue
            item, workflow, title = str(entry.get("id")), str(entry.get("workflow")), str(entry.get("theme") or entry.get("id"))
            data = planned_data(prog, entry)
            if data is None:
                result.items.append(PlannedItem(prog.id, item, workflow, title, "failed", error=f"qaflow does not start '{workflow}' from a programme"))
                continue
            _start(engine, result, prog.id, item, workflow, title, data, when)
    for prog in progs:
        if prog.start[:7] == month and prog.reporting.get("report_due"):
            forums = [f for f in prog.reporting.get("report_to") or () if f != SLT]
            data = {"programme": prog.id, "service": prog.service, "service_manager": prog.service_manager or "service_manager",
                    "quarter": _quarter(prog), "due_on": str(prog.reporting["report_due"]), "report_to": forums}
            _start(engine, result, prog.id, "qa_report", "qa_report_cycle", f"quarterly QA report due {data['due_on']}", data, when)
    if progs:  # one briefing a month for the department, whichever programmes run
        _start(engine, result, "", f"briefing:{month}", "managers_briefing", f"managers' briefing for {month}", {"month": first.isoformat()}, when,
               request_id=f"briefing:{month}")
    _join(engine, result, progs, first, when)
    return result


def join_proposals(engine: Any, month: str, *, at: Any = None, report: Any = None) -> ProgrammeMonth:
    """Only the second half of ``start_programme_month``: join the proposed thematic audits accepted before ``month`` to it
    (for a host, or the simulator, that starts the programmes' planned audits some other way)."""
    first = _month(month)
    when = as_time(at) if at is not None else engine.clock.now()
    result = ProgrammeMonth(month)
    progs = programmes_in(engine.definitions, month, report=report)
    result.programmes = [p.id for p in progs]
    _join(engine, result, progs, first, when)
    return result


def _join(engine: Any, result: ProgrammeMonth, progs: list[Any], first: dt.date, when: Any) -> None:
    from .runtime.engine import fire_as_engine

    by_service = {p.service: p for p in progs}
    for view in engine.instances(PROPOSAL_WORKFLOW, "accepted"):
        decided = str((view.data.get("decision") or {}).get("on") or "")
        if not decided or decided >= first.isoformat():
            continue  # accepted during (or after) this month: it joins the next one
        title = str(view.data.get("theme") or view.id)
        prog = by_service.get(view.data.get("service"))
        if prog is None:
            result.items.append(PlannedItem("", view.id, PROPOSAL_WORKFLOW, title, "waiting", view.id))
            continue
        try:
            fire_as_engine(engine, view.id, "join_programme", {"programme": prog.id, "month": first.isoformat()}, at=when)
        except ConcurrencyConflict:
            continue  # another run joined it first
        except Refused as exc:
            result.items.append(PlannedItem(prog.id, view.id, PROPOSAL_WORKFLOW, title, "failed", view.id, exc.message))
            continue
        result.items.append(PlannedItem(prog.id, view.id, PROPOSAL_WORKFLOW, title, "joined", view.id))
