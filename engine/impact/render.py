"""An ImpactReport as text (totals, then instance by instance) or as one self-contained HTML page."""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Mapping
from typing import Any

from ..calendar import LONDON
from ..clock import as_time
from .compare import AlertChange, DeadlineChange, DeadlineSide, EventChange, ImpactReport, InstanceImpact, KpiChange

__all__ = ["render_text", "render_html", "TOTALS"]

#: The totals shown, in order, with their labels and the breakdown shown beside them (ImpactReport.totals).
TOTALS: tuple[tuple[str, str, str | None], ...] = (
    ("deadlines_moved", "Deadlines whose due date moves", "moved"),
    ("deadlines_now_late", "Deadlines now late (met late or breached)", "now_late"),
    ("deadlines_no_longer_late", "Deadlines no longer late", "no_longer_late"),
    ("events_now_refused", "Recorded events now refused", None),
    ("events_now_taken", "Recorded events now taken (refused before)", None),
    ("events_other_state", "Recorded events taken to another state", None),
    ("instances_no_longer_started", "Instances no longer started (children)", "no_longer_started"),
    ("instances_now_started", "Instances now started (children)", "now_started"),
    ("alerts_other_recipients", "Alerts to other recipients", None),
    ("alerts_other_time", "Alerts sent at another time", None),
    ("alerts_no_longer_sent", "Alerts no longer sent", None),
    ("alerts_now_sent", "Alerts now sent", None),
    ("kpis_rag_changed", "KPIs whose RAG status changes", None),
    ("kpis_changed", "KPIs whose value changes", None),
)

_BREAKDOWN = {"moved": "by_deadline", "now_late": "by_deadline", "no_longer_late": "by_deadline",
              "no_longer_started": "by_workflow", "now_started": "by_workflow"}


# Control characters and line breaks in text from the store (a case id, an actor, an engine message) are shown
# escaped, so that each line printed is one line of the report: data cannot forge or hide lines of it.
_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x20), *range(0x7F, 0xA0)]} | {
    0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t", 0x2028: "\\u2028", 0x2029: "\\u2029"}


def _one_line(text: str) -> str:
    return text.translate(_CONTROL)


def _when(value: Any) -> str:
    return as_time(value).astimezone(LONDON).strftime("%a %-d %b %Y %H:%M")


def _day(value: dt.date) -> str:
    return value.strftime("%a %-d %b %Y")


def _breakdown(report: ImpactReport, key: str | None) -> str:
    if key is None:
        return ""
    parts = report.totals.get(_BREAKDOWN[key], {}).get(key, {})
    return ", ".join(f"{name} {n}" for name, n in parts.items())


def _pct(k: Mapping[str, Any]) -> str:
    value = k.get("value")
    if value is None:
        return f"no data ({k.get('status')})"
    shown = f"{value:g}%" if k.get("unit") == "percent" else f"{value:g}"
    figures = f" ({k['numerator']}/{k['denominator']})" if k.get("denominator") is not None else ""
    return f"{shown}{figures} {k.get('status')}"


def _heading(report: ImpactReport) -> list[str]:
    lines = [f"Impact of {report.new_config or 'the new configuration'} against {report.current_config or 'the current configuration'}"]
    span = f" from {_when(report.first)}" if report.first else ""
    lines.append(f"History: {report.store + ': ' if report.store else ''}{report.instances_in_store} instance(s), "
                 f"{report.events} recorded event(s) replayed{span} until {_when(report.until)}")
    lines.append(f"KPIs over {_day(report.period[0])} to {_day(report.period[1])}; replayed in {report.seconds:.1f} s")
    if report.reproduced:
        lines.append("The replay under the current configuration reproduces the store exactly.")
    else:
        lines.append(f"The replay under the current configuration does NOT reproduce the store ({len(report.mismatches)} difference(s), "
                     "listed at the end): the comparison below is between the two replays.")
    lines.extend(f"Note: {n}" for n in report.notes)
    return lines


def _side_text(side: DeadlineSide | None) -> str:
    if side is None:
        return "not started"
    first = side.explanation[0] if side.explanation else f"due {_day(side.due)}"
    return f"{first}; {side.outcome()}"


def _deadline_line(d: DeadlineChange) -> str:
    flags = " NOW LATE" if d.now_late else (" no longer late" if d.no_longer_late else "")
    if d.moved:
        assert d.current is not None and d.new is not None
        head = f"moves {_day(d.current.due)} -> {_day(d.new.due)}"
    elif d.current is None:
        head = "started only under the new configuration"
    elif d.new is None:
        head = "started only under the current configuration"
    else:
        head = f"{d.current.outcome()} -> {d.new.outcome()}"
    return f"deadline {d.deadline} ({d.title}): {head}{flags}"


def _event_line(e: EventChange) -> str:
    ev = e.event
    return f"{ev.label()} on {_when(ev.at)} by {ev.actor}: {e.current.describe()} | new: {e.new.describe()}"


def _alert_line(a: AlertChange) -> str:
    def who(side: Mapping[str, Any] | None) -> str:
        return ", ".join(side["recipients"]) if side else ""

    if a.kind == "recipients":
        return f"alert {a.name}: to {who(a.current)} -> to {who(a.new)}"
    if a.kind == "time":
        assert a.current is not None and a.new is not None
        return f"alert {a.name}: sent {_when(a.current['at'])} -> {_when(a.new['at'])}"
    if a.kind == "now_sent":
        assert a.new is not None
        return f"alert {a.name}: now sent {_when(a.new['at'])} to {who(a.new)}"
    assert a.current is not None
    return f"alert {a.name}: no longer sent (was {_when(a.current['at'])} to {who(a.current)})"


def _instance_head(i: InstanceImpact) -> str:
    label = f" ({i.label})" if i.label else ""
    parent = f", child of {i.parent}" if i.parent else ""
    if i.started == "current":
        state = f"started only under the current configuration (ends '{i.current_state}')"
    elif i.started == "new":
        state = f"started only under the new configuration (ends '{i.new_state}')"
    elif i.started == "neither":
        state = "started under neither configuration"
    elif i.current_state != i.new_state:
        state = f"ends '{i.current_state}' -> '{i.new_state}'"
    else:
        state = f"ends '{i.current_state}'"
    return f"{i.instance}{label}: {i.workflow}{parent}, {state}"


def _kpi_line(k: KpiChange) -> str:
    flag = "  RAG CHANGES" if k.rag_changed else ""
    return f"{k.name} ({k.title}): {_pct(k.current)} -> {_pct(k.new)}{flag}"


def render_text(report: ImpactReport) -> str:
    """Totals, the deadlines now late, the KPIs, then every instance that differs, then where the store was not reproduced."""
    out = _heading(report)
    out.append("")
    out.append("Totals")
    out.append(f"  {'Instances that differ':<46}{report.totals['instances_changed']:>6}  of {report.totals['instances_current']}")
    for key, label, breakdown in TOTALS:
        extra = _breakdown(report, breakdown)
        out.append(f"  {label:<46}{report.totals[key]:>6}" + (f"  ({extra})" if extra else ""))
    late = report.now_late()
    if late:
        out.append("")
        out.append("Now late")
        for inst, d in late:
            assert d.new is not None
            out.append(f"  {inst.instance}" + (f" ({inst.label})" if inst.label else "") +
                       f" {d.deadline}: due {_day(d.new.due)}, {d.new.outcome()}" +
                       (f" (was due {_day(d.current.due)}, {d.current.outcome()})" if d.current else ""))
    if report.kpis:
        out.append("")
        out.append("KPIs")
        out.extend("  " + _kpi_line(k) for k in report.kpis)
    if report.instances:
        out.append("")
        out.append("Instance by instance")
        for i in report.instances:
            out.append(_instance_head(i))
            for d in i.deadlines:
                out.append("  " + _deadline_line(d))
                out.append("    current: " + _side_text(d.current))
                out.append("    new:     " + _side_text(d.new))
            for e in i.events:
                out.append("  event " + _event_line(e))
            if i.current_path or i.new_path:
                out.append("  path, current: " + ("; ".join(i.current_path) or "-"))
                out.append("  path, new:     " + ("; ".join(i.new_path) or "-"))
            out.extend("  " + _alert_line(a) for a in i.alerts)
    else:
        out.append("")
        out.append("Nothing would have differed.")
    if report.mismatches:
        out.append("")
        out.append("Where the replay under the current configuration differs from the store")
        out.extend("  " + m for m in report.mismatches)
    return "".join(_one_line(line) + "\n" for line in out)


# --------------------------------------------------------------------------- HTML

CSS = """
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; color: #1a1a1a; background: #fff; }
main { max-width: 1120px; margin: 0 auto; padding: 16px; }
header { border-bottom: 3px solid #2166ac; margin-bottom: 12px; }
h1 { font-size: 1.5rem; margin: 0.2em 0; }
h2 { font-size: 1.2rem; border-bottom: 1px solid #9ab; padding-bottom: 3px; margin-top: 1.5em; }
h3 { font-size: 1rem; margin: 1em 0 0.3em; }
.sub { color: #404040; margin: 0 0 6px; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 6px 0 12px; }
caption { text-align: left; font-weight: 600; padding: 4px 0; }
th, td { border: 1px solid #c8c8c8; padding: 3px 7px; text-align: left; vertical-align: top; }
thead th { background: #eef2f6; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.late { color: #8b0000; font-weight: 600; }
.ok { color: #00441b; }
.warn { background: #fff4d6; border: 1px solid #e0b000; padding: 6px 10px; }
ul.expl { margin: 2px 0; padding-left: 1.2em; font-size: 0.82rem; color: #333; }
section.instance { border-top: 1px solid #ddd; padding-top: 4px; }
@media print { section.instance { break-inside: avoid; } }
"""


_LATE = ' class="late"'


def _anchor(key: str) -> str:
    """An HTML id for an instance key (which may hold '/' and '#')."""
    return "i-" + re.sub(r"[^A-Za-z0-9_-]", "-", key)


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _explanation(side: DeadlineSide | None) -> str:
    if side is None:
        return "<p>not started</p>"
    items = "".join(f"<li>{_e(line)}</li>" for line in side.explanation)
    return f"<p>{_e(side.outcome())}</p><ul class=\"expl\">{items}</ul>"


def _instance_html(i: InstanceImpact) -> str:
    parts = [f"<section class=\"instance\" id=\"{_anchor(i.key)}\"><h3>{_e(_instance_head(i))}</h3>"]
    if i.deadlines:
        rows = []
        for d in i.deadlines:
            cls = _LATE if d.now_late else (' class="ok"' if d.no_longer_late else "")
            rows.append(f"<tr><th scope=\"row\"{cls}>{_e(d.deadline)}<br>{_e(d.title)}"
                        f"{'<br>now late' if d.now_late else ''}{'<br>no longer late' if d.no_longer_late else ''}</th>"
                        f"<td>{_explanation(d.current)}</td><td>{_explanation(d.new)}</td></tr>")
        parts.append("<table><caption>Deadlines</caption><thead><tr><th scope=\"col\">Deadline</th><th scope=\"col\">Current configuration</th>"
                     "<th scope=\"col\">New configuration</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")
    if i.events:
        rows = [f"<tr><td>{_e(_when(e.event.at))}</td><td>{_e(e.event.label())}</td><td>{_e(e.event.actor)}</td>"
                f"<td>{_e(e.current.describe())}</td><td>{_e(e.new.describe())}</td></tr>" for e in i.events]
        parts.append("<table><caption>Recorded events taken differently</caption><thead><tr><th scope=\"col\">When</th>"
                     "<th scope=\"col\">Event</th><th scope=\"col\">By</th><th scope=\"col\">Current</th><th scope=\"col\">New</th>"
                     "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>")
    if i.current_path or i.new_path:
        parts.append("<table><caption>States it goes through</caption><thead><tr><th scope=\"col\">Current</th><th scope=\"col\">New</th>"
                     "</tr></thead><tbody><tr><td><ol>" + "".join(f"<li>{_e(s)}</li>" for s in i.current_path) + "</ol></td><td><ol>"
                     + "".join(f"<li>{_e(s)}</li>" for s in i.new_path) + "</ol></td></tr></tbody></table>")
    if i.alerts:
        parts.append("<ul>" + "".join(f"<li>{_e(_alert_line(a))}</li>" for a in i.alerts) + "</ul>")
    parts.append("</section>")
    return "".join(parts)


def render_html(report: ImpactReport, title: str | None = None) -> str:
    """One page, no scripts: the totals, deadlines now late and moved, KPIs, then each instance with both explanations."""
    head = _heading(report)
    page = [(f"<!DOCTYPE html><html lang=\"en-GB\"><head><meta charset=\"utf-8\"><title>{_e(title or head[0])}</title>"
             f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><style>{CSS}</style></head><body><main>"),
            f"<header><h1>{_e(title or head[0])}</h1>" + "".join(f"<p class=\"sub\">{_e(line)}</p>" for line in head[1:]) + "</header>"]
    if not report.reproduced:
        page.append("<p class=\"warn\">The replay under the current configuration does not reproduce the store: "
                    "see <a href=\"#mismatches\">where it differs</a>.</p>")
    rows = [(f"<tr><th scope=\"row\">Instances that differ</th><td class=\"n\">{report.totals['instances_changed']}</td>"
             f"<td>of {report.totals['instances_current']}</td></tr>")]
    for key, label, breakdown in TOTALS:
        rows.append(f"<tr><th scope=\"row\">{_e(label)}</th><td class=\"n\">{report.totals[key]}</td><td>{_e(_breakdown(report, breakdown))}</td></tr>")
    page.append("<h2>Totals</h2><table><thead><tr><th scope=\"col\">What differs</th><th scope=\"col\">Count</th>"
                "<th scope=\"col\">Where</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")

    def deadline_table(caption: str, pairs: list[tuple[InstanceImpact, DeadlineChange]]) -> str:
        body = "".join(
            f"<tr><td><a href=\"#{_anchor(i.key)}\">{_e(i.instance)}</a></td><td>{_e(i.label)}</td><td>{_e(d.deadline)}</td>"
            f"<td>{_e(_day(d.current.due)) if d.current else 'not started'}</td><td>{_e(_day(d.new.due)) if d.new else 'not started'}</td>"
            f"<td>{_e(d.current.outcome()) if d.current else ''}</td><td{_LATE if d.now_late else ''}>"
            f"{_e(d.new.outcome()) if d.new else ''}</td></tr>" for i, d in pairs)
        return (f"<table><caption>{_e(caption)}</caption><thead><tr><th scope=\"col\">Instance</th><th scope=\"col\">Case</th>"
                "<th scope=\"col\">Deadline</th><th scope=\"col\">Due (current)</th><th scope=\"col\">Due (new)</th>"
                "<th scope=\"col\">Outcome (current)</th><th scope=\"col\">Outcome (new)</th></tr></thead><tbody>" + body + "</tbody></table>")

    late, moved = report.now_late(), report.moved()
    if late:
        page.append("<h2>Now late</h2>" + deadline_table(f"{len(late)} deadline(s) late or breached under the new configuration, "
                                                         "not under the current one", late))
    if moved:
        page.append("<h2>Deadlines that move</h2>" + deadline_table(f"{len(moved)} deadline(s) with another due date", moved))
    if report.kpis:
        body = "".join(f"<tr><td>{_e(k.name)}</td><td>{_e(k.title)}</td><td>{_e(_pct(k.current))}</td><td>{_e(_pct(k.new))}</td>"
                       f"<td{_LATE if k.rag_changed else ''}>{'yes' if k.rag_changed else 'no'}</td></tr>" for k in report.kpis)
        page.append("<h2>KPIs</h2><table><thead><tr><th scope=\"col\">KPI</th><th scope=\"col\">Title</th><th scope=\"col\">Current</th>"
                    "<th scope=\"col\">New</th><th scope=\"col\">RAG changes</th></tr></thead><tbody>" + body + "</tbody></table>")
    page.append("<h2>Instance by instance</h2>")
    page.append("".join(_instance_html(i) for i in report.instances) or "<p>Nothing would have differed.</p>")
    if report.mismatches:
        page.append("<h2 id=\"mismatches\">Where the replay under the current configuration differs from the store</h2><ul>"
                    + "".join(f"<li>{_e(m)}</li>" for m in report.mismatches) + "</ul>")
    page.append("</main></body></html>\n")
    return "".join(page)
