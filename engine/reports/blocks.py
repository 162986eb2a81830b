"""Turn a computed report into neutral blocks (headings, paragraphs, tables) that every renderer formats.

What a block says depends only on the metric's kind (count, share, distribution, ...) and on the
report's own labels and presentation settings, never on which workflow it came from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeGuard

__all__ = [
    "STATUS_TEXT",
    "Block",
    "Heading",
    "KpiTrend",
    "TrendRow",
    "Labels",
    "Para",
    "Table",
    "fmt_number",
    "fmt_pct",
    "heading_line",
    "layout_for",
    "metric_blocks",
    "scalar_metrics",
    "section_blocks",
]

STATUS_TEXT = {"green": "Green", "amber": "Amber", "red": "Red", "no_data": "No data", "no_target": "No target", "not_computed": "Not computed",
               "not_imported": "Not imported"}
BENCHMARK_TITLES = {"england": "England", "statistical_neighbours": "Stat. neighbours", "region": "Region"}
MAX_ROWS = 40


@dataclass(frozen=True)
class Heading:
    level: int
    text: str
    anchor: str = ""


@dataclass(frozen=True)
class Para:
    text: str
    kind: str = "text"  # text | note | figure (a headline number)
    items: tuple[str, ...] = ()  # a bulleted list after the text


@dataclass(frozen=True)
class Table:
    caption: str
    headers: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    numeric: tuple[bool, ...] = ()
    note: str = ""
    status_column: int | None = None  # a column holding a RAG status key (green/amber/red...)


@dataclass(frozen=True)
class TrendRow:
    """One KPI's figures month by month, with the status of each month against the KPI's target."""

    title: str
    values: tuple[float | None, ...]
    statuses: tuple[str, ...]
    target: float | None
    direction: str
    unit: str


@dataclass(frozen=True)
class KpiTrend:
    """The KPIs of one table month by month: a table everywhere, and a chart in HTML."""

    caption: str
    months: tuple[str, ...]
    rows: tuple[TrendRow, ...]
    anchor: str = ""

    def table(self) -> Table:
        headers = ("Indicator", *self.months, "Target")
        rows = tuple((r.title, *(_unit_value(v, r.unit) for v in r.values), target_text(r.target, r.direction, r.unit)) for r in self.rows)
        return Table(self.caption, headers, rows, (False, *([True] * (len(headers) - 1))),
                     note="the figure for each month; '-' where there is none")


Block = Heading | Para | Table | KpiTrend


def fmt_number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.1f}".rstrip("0").rstrip(".") if not value.is_integer() else f"{int(value):,}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def fmt_pct(value: Any) -> str:
    return "no data" if value is None else f"{value:.1f}%"


def _unit_value(value: Any, unit: str | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}%" if unit == "percent" else fmt_number(value)


def target_text(target: Any, direction: str | None, unit: str | None) -> str:
    """The target as people read it: "≥ 90%", "≤ 18"."""
    if target is None:
        return "-"
    return ("≤ " if direction == "lower_is_better" else "≥ ") + (f"{fmt_number(target)}%" if unit == "percent" else fmt_number(target))


def humanise(key: str) -> str:
    text = str(key).replace("_", " ").strip()
    return text[:1].upper() + text[1:] if text else text


@dataclass
class Labels:
    """Every label the report carries: metric titles, scale levels, keys and deadline titles."""

    report: Mapping[str, Any]
    scales: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    keys: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    deadlines: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        labels = self.report.get("labels") or {}
        # a vocabulary orders and labels values as a scale does
        self.scales = {**(labels.get("vocabularies") or {}), **(labels.get("scales") or {})}
        self.keys = dict(labels.get("keys") or {})
        self.deadlines = dict(labels.get("deadlines") or {})

    def about(self, path: str) -> Mapping[str, Any]:
        about: Any = {"metrics": self.report.get("about") or {}}
        for part in path.split("."):
            about = (about.get("metrics") or {}).get(part) if isinstance(about, Mapping) else None
            if about is None:
                return {}
        return about

    def title(self, path: str) -> str:
        return str(self.about(path).get("title") or humanise(path.rsplit(".", maxsplit=1)[-1]))

    def scale_order(self, scale: str | None) -> list[str]:
        return [lv["key"] for lv in self.scales.get(scale or "", [])]

    def value(self, scale: str | None, key: str) -> str:
        for lv in self.scales.get(scale or "", []):
            if lv["key"] == key:
                return str(lv["label"])
        return humanise(key)

    def key(self, metric: str, key: str) -> str:
        for item in self.keys.get(metric, []):
            if item["key"] == key:
                return str(item["label"])
        return humanise(key)

    def key_order(self, metric: str, keys: Iterable[str]) -> list[str]:
        listed = [item["key"] for item in self.keys.get(metric, [])]
        rest = sorted(k for k in keys if k not in listed)
        return [k for k in listed if k in set(keys)] + rest

    def deadline(self, name: str) -> str:
        return self.deadlines.get(name) or humanise(name)


def get_path(data: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(data, Mapping):
            return None
        data = data.get(part)
    return data


def layout_for(report: Mapping[str, Any]) -> Mapping[str, Any]:
    """The monthly briefing for a one-month period, the annual report for a financial year, else the quarterly report."""
    presentation = report.get("presentation") or {}
    kind = (report.get("period") or {}).get("kind")
    wanted = {"month": "monthly", "year": "annual"}.get(str(kind), "quarterly")
    layout = (presentation.get(wanted) or presentation.get("quarterly") or presentation.get("annual")
              or presentation.get("monthly"))
    if layout:
        return layout
    return {"title": report.get("title", "Report"), "sections": [{"title": "Figures", "metrics": sorted(report.get("about") or {})}]}


# --------------------------------------------------------------------------- metrics -> blocks


def metric_blocks(report: Mapping[str, Any], path: str, labels: Labels, *, metrics: Mapping[str, Any] | None = None,
                  depth: int = 3) -> list[Block]:
    about = labels.about(path)
    value = get_path(metrics if metrics is not None else report.get("metrics"), path)
    kind = about.get("kind")
    title = labels.title(path)
    name = path.rsplit(".", maxsplit=1)[-1]
    if kind == "group":
        out: list[Block] = [Heading(depth, title, anchor=path.replace(".", "-"))]
        if about.get("description"):
            out.append(Para(str(about["description"]), "note"))
        for child in about.get("order") or sorted(about.get("metrics") or {}):
            out += metric_blocks(report, f"{path}.{child}", labels, metrics=metrics, depth=depth + 1)
        return out
    if kind == "count":
        if isinstance(value, Mapping):
            rows = sorted(value.items(), key=lambda kv: (-kv[1], kv[0]))
            return [Table(title, ("", "Number"), tuple((humanise(k), v) for k, v in rows) or (("(none)", 0),), (False, True))]
        return [Para(f"{title}: {fmt_number(value)}", "figure")]
    if kind == "share":
        return _share_blocks(title, value)
    if kind == "distribution":
        return _distribution_blocks(title, name, value, about, labels)
    if kind == "deadlines":
        return _deadline_blocks(title, value, labels, about)
    if kind == "changes":
        return _changes_blocks(title, value, about, labels)
    if kind == "workload":
        return _workload_blocks(title, value)
    if kind == "kpis":
        return kpi_blocks(title, value)
    if kind == "list":
        return _list_blocks(title, value, about)
    if value is None:
        return []
    return [Para(f"{title}: {fmt_number(value)}")]


def _share_text(value: Any) -> str:
    if isinstance(value, Mapping):
        if value.get("pct") is None:
            return "no data"
        return f"{fmt_pct(value['pct'])} ({value['numerator']} of {value['denominator']})"
    return fmt_pct(value)


def _is_share_detail(value: Any) -> TypeGuard[Mapping[str, Any]]:
    return isinstance(value, Mapping) and set(value) == {"numerator", "denominator", "pct"}


def _share_blocks(title: str, value: Any) -> list[Block]:
    if isinstance(value, Mapping) and not _is_share_detail(value):
        rows = []
        for k in sorted(value):
            v = value[k]
            if _is_share_detail(v):
                rows.append((humanise(k), v["numerator"], v["denominator"], fmt_pct(v["pct"])))
            else:
                rows.append((humanise(k), "", "", fmt_pct(v)))
        return [Table(title, ("", "Counted", "Of", "%"), tuple(rows) or (("(none)", 0, 0, "no data"),), (False, True, True, True))]
    return [Para(f"{title}: {_share_text(value)}", "figure")]


def _dist_rows(dist: Mapping[str, Any], scale: str | None, labels: Labels) -> list[tuple[Any, ...]]:
    counts = dist.get("counts") or {}
    order = labels.scale_order(scale)
    keys = [k for k in order if k in counts] + sorted((k for k in counts if k not in order), key=lambda k: (-counts[k], k))
    return [(labels.value(scale, k), counts[k], fmt_pct((dist.get("pct") or {}).get(k))) for k in keys]


def _list_blocks(title: str, value: Any, about: Mapping[str, Any]) -> list[Block]:
    if not isinstance(value, Mapping):
        return []
    if "rows" not in value:  # split by group: one table each
        out: list[Block] = []
        for group in sorted(value):
            out += _list_blocks(f"{title}: {humanise(group)}", value[group], about)
        return out or [Para(f"{title}: none in the period.")]
    rows = value.get("rows") or []
    if not rows:
        return [Para(f"{title}: none in the period.")]
    headers = tuple(str(c) for c in value.get("columns") or about.get("columns") or ())
    total = value.get("total", len(rows))
    note = f"the first {len(rows)} of {total}" if total > len(rows) else ""
    return [Table(title, headers, tuple(tuple("-" if c is None or c == "" else c for c in row) for row in rows),
                  tuple(isinstance(c, (int, float)) and not isinstance(c, bool) for c in rows[0]), note=note)]


def _split_distribution_blocks(title: str, value: Mapping[str, Any], about: Mapping[str, Any], labels: Labels) -> list[Block]:
    """A distribution split by group (``by:``): per group, how many were counted and the values found, most often first."""
    scale = about.get("scale") or about.get("vocabulary")
    out: list[Block] = []
    for entry in about.get("values") or []:
        rows = []
        for group in sorted(value, key=str):
            dist = (value[group] or {}).get(entry)
            if not isinstance(dist, Mapping) or "counts" not in dist:
                continue
            found = sorted(((k, n) for k, n in (dist.get("counts") or {}).items() if n), key=lambda kn: (-kn[1], kn[0]))
            text = "; ".join(f"{labels.value(scale, k)} {n}" for k, n in found[:6]) + (f"; {len(found) - 6} more" if len(found) > 6 else "")
            rows.append((humanise(group), dist.get("total", 0), text or "-"))
        if rows:
            sub = title if len(about.get("values") or []) == 1 else f"{title}: {humanise(entry)}"
            out.append(Table(sub, ("", "Counted", "Found (most often first)"), tuple(rows), (False, True, False)))
    return out or [Para(f"{title}: none in the period.")]


def _distribution_blocks(title: str, name: str, value: Any, about: Mapping[str, Any], labels: Labels) -> list[Block]:
    if not isinstance(value, Mapping):
        return []
    entries = [*(about.get("values") or []), *(about.get("each") or [])] or sorted(value)
    if entries and not any(e in value for e in entries) and all(isinstance(v, Mapping) for v in value.values()):
        return _split_distribution_blocks(title, value, about, labels)  # split by group ('by')
    scale = about.get("scale") or about.get("vocabulary")
    out: list[Block] = []
    for entry in entries:
        dist = value.get(entry)
        if not isinstance(dist, Mapping):
            continue
        sub = f"{title}" if len(value) == 1 else f"{title}: {humanise(entry)}"
        if "counts" in dist:  # one distribution
            rows = _dist_rows(dist, scale, labels)
            if not dist.get("total"):
                out.append(Para(f"{sub}: none in the period."))
                continue
            extra = f"; {fmt_pct(dist['favourable_pct'])} favourable" if dist.get("favourable_pct") is not None else ""
            out.append(Table(sub, ("", "Number", "%"), tuple(rows), (False, True, True), note=f"{dist['total']} in all{extra}"))
        else:  # a distribution per key (e.g. per domain)
            order = labels.scale_order(scale)
            cats = list(order) or sorted({c for d in dist.values() for c in (d.get("counts") or {})})
            keys = labels.key_order(name, dist.keys())
            has_fav = any(d.get("favourable_pct") is not None for d in dist.values())
            headers = ("", *(labels.value(scale, c) for c in cats), "Total") + (("Favourable %",) if has_fav else ())
            rows = []
            for k in keys:
                d = dist[k]
                row = (labels.key(name, k), *((d.get("counts") or {}).get(c, 0) for c in cats), d.get("total", 0))
                if has_fav:
                    row += (fmt_pct(d.get("favourable_pct")),)
                rows.append(row)
            out.append(Table(sub, headers, tuple(rows), (False, *([True] * (len(headers) - 1)))))
    return out


_DEADLINE_HEADERS = ("", "Due", "On time", "Met late", "Overdue (not met)", "Still open", "Extended", "Cancelled", "On time %")


def _deadline_row(label: str, c: Mapping[str, Any]) -> tuple[Any, ...]:
    return (label, c["due"], c["met_on_time"], c["met_late"], c["breached"], c["open"] + c.get("paused", 0), c["extended"], c["cancelled"],
            fmt_pct(c["on_time_pct"]))


def _deadline_blocks(title: str, value: Any, labels: Labels, about: Mapping[str, Any]) -> list[Block]:
    if not isinstance(value, Mapping):
        return []
    numeric = (False, *([True] * 8))
    if "due" in value:  # combined
        return [Table(title, _DEADLINE_HEADERS, (_deadline_row("All", value),), numeric)]
    first = next(iter(value.values()), None)
    rows = []
    if isinstance(first, Mapping) and "due" in first:  # per deadline, or per group when combined
        order = list(about.get("deadlines") or [])
        per_group = not all(k in order for k in value)
        if per_group:
            items = sorted(value.items(), key=lambda kv: (-kv[1]["late"], kv[0]))
        else:
            items = sorted(value.items(), key=lambda kv: order.index(kv[0]))
        for k, c in items:
            if c["due"] or c["cancelled"]:
                rows.append(_deadline_row(humanise(k) if per_group else labels.deadline(k), c))
    else:  # per group, per deadline
        order = list(about.get("deadlines") or [])
        for group in sorted(value):
            for k, c in sorted((value[group] or {}).items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)):
                if c["due"] or c["cancelled"]:
                    rows.append(_deadline_row(f"{humanise(group)}: {labels.deadline(k)}", c))
    if not rows:
        return [Para(f"{title}: nothing fell due in the period.")]
    note = ""
    if len(rows) > MAX_ROWS:
        note = f"the {MAX_ROWS} rows with the most missed deadlines of {len(rows)}"
        rows = sorted(rows, key=lambda r: (-(r[3] + r[4]), str(r[0])))[:MAX_ROWS]
    return [Table(title, _DEADLINE_HEADERS, tuple(rows), numeric, note=note)]


def _changes_blocks(title: str, value: Any, about: Mapping[str, Any], labels: Labels) -> list[Block]:
    if not isinstance(value, Mapping):
        return []
    scale = about.get("scale")
    rows = []
    moves = []
    for name in sorted(value):
        c = value[name]
        if not isinstance(c, Mapping) or "total" not in c:
            continue
        if "raised" in c:
            rows.append((humanise(name), c["total"], c["unchanged"], c["raised"], c["lowered"]))
        else:
            rows.append((humanise(name), c["total"], c["unchanged"], c["changed"], ""))
        for before, afters in sorted((c.get("matrix") or {}).items()):
            for after, n in sorted(afters.items()):
                if before != after:
                    moves.append(f"{humanise(name)}: {labels.value(scale, before)} → {labels.value(scale, after)}: {n}")
    if not rows or all(r[1] == 0 for r in rows):
        return [Para(f"{title}: none in the period.")]
    headers = ("Compared with", "Number", "Unchanged", "Raised", "Lowered") if scale else ("Compared with", "Number", "Unchanged", "Changed", "")
    return [Table(title, headers, tuple(rows), (False, True, True, True, True)), *( [Para("Changes:", items=tuple(moves))] if moves else [])]


def _workload_blocks(title: str, value: Any) -> list[Block]:
    if not isinstance(value, Mapping):
        return []
    people = value.get("people") or {}
    if not people:
        return [Para(f"{title}: nobody had work in hand in the period.")]
    cap = value.get("capacity")
    summary = (f"{title}: {len(people)} people; the busiest had {value.get('peak', 0)} in hand in one week; "
               f"{value.get('people_over_capacity', 0)} went over capacity" + (f" (capacity {fmt_number(cap)} a week)." if cap is not None else "."))
    ranked = sorted(people.items(), key=lambda kv: (-kv[1]["peak"], -kv[1]["average"], kv[0]))
    rows = tuple((who, p["peak"], fmt_number(p["average"]), fmt_number(p["capacity"]), p["weeks_over_capacity"]) for who, p in ranked[:MAX_ROWS])
    note = f"the {MAX_ROWS} busiest of {len(people)}" if len(people) > MAX_ROWS else ""
    return [Para(summary, "figure"),
            Table(f"{title}: busiest people", ("Person", "Peak in a week", "Average a week", "Capacity", "Weeks over capacity"), rows,
                  (False, True, True, True, True), note=note)]


SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Iterable[float | None]) -> str:
    """The values as a row of bars, lowest to highest (· where there is no figure): a trend for a terminal line."""
    values = list(values)
    known = [v for v in values if v is not None]
    if not known:
        return "·" * len(values)
    lo, hi = min(known), max(known)
    top = len(SPARKS) - 1
    return "".join("·" if v is None else SPARKS[round((v - lo) / (hi - lo) * top) if hi > lo else top // 2] for v in values)


def _kpi_table(caption: str, kpis: Mapping[str, Any], order: Iterable[str], note: str = "", *, spark: bool = False) -> Table:
    benchmarks = [b for b in BENCHMARK_TITLES if any(b in (k.get("benchmarks") or {}) for k in kpis.values())]

    def row(name: str, k: Mapping[str, Any]) -> tuple[Any, ...]:
        unit = k.get("unit")
        status = k.get("status")
        if status == "not_computed":
            shown = "not computed"
        elif status == "not_imported":
            shown = "not imported"
        else:
            shown = _unit_value(k["value"], unit) if k["value"] is not None else "no data"
        bench = []
        for b in benchmarks:
            known = (k.get("benchmarks") or {}).get(b) or {}
            bench.append(_unit_value(known.get("value"), unit))
        basis = f"{fmt_number(k['numerator'])} of {fmt_number(k['denominator'])}" if k.get("denominator") else ""
        imported = k.get("imported") or {}
        if imported:
            where = "" if imported.get("level") != "department" or not k.get("defined_in") else "; whole department"
            basis = "; ".join(x for x in (basis, _basis_text(imported) + where) if x)
        raw = k.get("trend")
        trend: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        line = (sparkline((trend[m] or {}).get("value") for m in sorted(trend)),) if spark else ()
        return (k.get("title") or humanise(name), shown, target_text(k.get("target"), k.get("direction"), unit), status, *bench, *line, basis)

    months = sorted({m for k in kpis.values() if isinstance(k.get("trend"), Mapping) for m in k["trend"]})
    spark = spark and bool(months)
    trend_header = (f"{months[0]} to {months[-1]}",) if spark else ()
    headers = ("Indicator", "Figure", "Target", "Status", *(BENCHMARK_TITLES[b] for b in benchmarks), *trend_header, "Counted")
    numeric = (False, True, True, False, *([True] * len(benchmarks)), *([False] * len(trend_header)), False)
    return Table(caption, headers, tuple(row(n, kpis[n]) for n in order), numeric, status_column=3, note=note)


def _basis_text(imported: Mapping[str, Any]) -> str:
    basis = imported.get("basis")
    if basis == "months":
        months = imported.get("months") or []
        return f"imported, {len(months)} month{'s' if len(months) != 1 else ''} added up"
    if basis == "latest_month":
        return f"imported, latest month {imported.get('period')}"
    return f"imported for {imported.get('period')}"


def _trend_block(caption: str, kpis: Mapping[str, Any], order: Iterable[str], anchor: str) -> KpiTrend | None:
    names = [n for n in order if isinstance(kpis[n].get("trend"), Mapping) and kpis[n]["trend"]]
    if not names:
        return None
    months = tuple(sorted({m for n in names for m in kpis[n]["trend"]}))
    rows = []
    for n in names:
        k, trend = kpis[n], kpis[n]["trend"]
        rows.append(TrendRow(str(k.get("title") or humanise(n)), tuple((trend.get(m) or {}).get("value") for m in months),
                             tuple((trend.get(m) or {}).get("status") or "no_data" for m in months), k.get("target"),
                             str(k.get("direction") or "higher_is_better"), str(k.get("unit") or "")))
    return KpiTrend(caption, months, tuple(rows), anchor=anchor)


def kpi_blocks(title: str, value: Any, *, compact: bool = False) -> list[Block]:
    """The KPI tables (figure, target, RAG status, benchmarks, what was counted), each followed by its KPIs' trend
    month by month; ``compact`` (a terminal) puts the trend in the table as a sparkline instead."""
    if not isinstance(value, Mapping):
        return []
    out: list[Block] = []
    indicators = value.get("indicators") or {}
    if indicators:
        order = sorted(indicators)
        tolerance = next(iter(indicators.values())).get("tolerance")
        out.append(_kpi_table(title, indicators, order, spark=compact,
                              note=f"Amber: within the tolerance of the target ({fmt_number(tolerance)} points unless the KPI sets its own)."))
        trend = _trend_block(f"{title}: the last months", indicators, order, "kpi-trend-" + _anchor(title))
        if trend is not None and not compact:
            out.append(trend)
    quiet = []
    for pid in sorted(value.get("programmes") or {}):
        prog = value["programmes"][pid]
        kp = prog.get("kpis") or {}
        if not any(k.get("value") is not None for k in kp.values()):
            quiet.append(str(prog.get("title") or pid))
            continue
        caption = str(prog.get("title") or pid)
        out.append(_kpi_table(caption, kp, list(kp), spark=compact))
        trend = _trend_block(f"{caption}: the last months", kp, list(kp), "kpi-trend-" + _anchor(pid))
        if trend is not None and not compact and any(v is not None for r in trend.rows for v in r.values):
            out.append(trend)
    if quiet:
        out.append(Para("Programmes with no figures in the period (nothing counted from workflow history, and nothing imported with "
                        "qaflow kpi import for the period):", "note", items=tuple(quiet)))
    return out


def delivery_blocks(value: Any) -> list[Block]:
    """Planned vs delivered: each programme's targeted audits of the period (planned, or proposed by an indicator and
    joined) with whether they started and reported, and its surveys sent and answered against the target."""
    if not isinstance(value, Mapping):
        return []
    audits, surveys = [], []
    planned = started = delivered = 0
    for pid in sorted(value.get("programmes") or {}):
        prog = value["programmes"][pid]
        delivery = prog.get("delivery") or {}
        name = str(prog.get("title") or pid).split(" - ")[0]
        planned += int(delivery.get("planned") or 0)
        started += int(delivery.get("started") or 0)
        delivered += int(delivery.get("delivered") or 0)
        for a in delivery.get("audits") or ():
            kind = "Multi-agency" if a.get("workflow") == "multi_agency_audit" else "Thematic"
            audits.append((name, str(a.get("title") or a.get("id")), kind, str(a.get("from") or ""), str(a.get("month") or ""),
                           a.get("started_on") or "not started", humanise(str(a["state"])) if a.get("state") else "-",
                           "yes" if a.get("delivered") else "no"))
        for sv in delivery.get("surveys") or ():
            surveys.append((name, humanise(str(sv.get("point") or sv.get("id"))), fmt_number(sv.get("sent")), fmt_number(sv.get("responded")),
                            fmt_pct(sv.get("response_rate")) if sv.get("response_rate") is not None else "-",
                            target_text(sv.get("target"), "higher_is_better", "percent") if sv.get("target") is not None else "-",
                            sv.get("status") or "no_data"))
    out: list[Block] = []
    if audits:
        out.append(Para(f"Targeted audits: {planned} planned for the period, {started} started, {delivered} with findings reported.", "figure"))
        out.append(Table("Planned vs delivered: targeted audits",
                         ("Programme", "Audit", "Kind", "From", "Month", "Started", "State", "Findings reported"), tuple(audits),
                         note="From: the programme's plan, or an indicator rule whose proposal was accepted and joined the month."))
    if surveys:
        out.append(Table("Planned vs delivered: surveys", ("Programme", "Survey point", "Sent", "Answered", "Response rate", "Target", "Status"),
                         tuple(surveys), (False, False, True, True, True, True, False), status_column=6))
    return out


# --------------------------------------------------------------------------- sections


def scalar_metrics(report: Mapping[str, Any]) -> list[tuple[str, str, Any]]:
    """(path, title, value) of every top-level figure that is a single number (count or percentage)."""
    labels = Labels(report)
    out = []
    for name in report.get("order") or sorted(report.get("about") or {}):
        about = labels.about(name)
        value = (report.get("metrics") or {}).get(name)
        if about.get("kind") in ("count", "share") and (value is None or isinstance(value, (int, float)) or _is_share_detail(value)):
            out.append((name, labels.title(name), value["pct"] if _is_share_detail(value) else value))
    return out


def _trend_blocks(report: Mapping[str, Any], section: Mapping[str, Any]) -> list[Block]:
    trend = report.get("trend") or {}
    months = list(trend.get("months") or [])
    if not months:
        return [Para("No trend: the report was computed without one.")]
    in_period = list(trend.get("in_period") or [True] * len(months))
    wanted = section.get("series") or list((trend.get("series") or {}).keys())
    index = [i for i in range(len(months)) if section.get("months") != "period" or in_period[i]]
    rows = []
    notes = []
    for name in wanted:
        s = (trend.get("series") or {}).get(name)
        if not s:
            continue
        values = [s["values"][i] for i in index]
        percent = name.endswith("_pct") or "%" in s.get("title", "")
        show = [fmt_pct(v) if percent else fmt_number(v) for v in values]
        target = s.get("target")
        tgt = "-" if target is None else (("≤ " if s.get("direction") == "lower_is_better" else "≥ ") + fmt_number(target) + ("%" if percent else ""))
        rows.append((s.get("title") or humanise(name), *show, tgt))
        known = [(months[i], s["values"][i]) for i in range(len(months)) if s["values"][i] is not None]
        if len(known) >= 2 and s.get("direction"):
            (m0, first), (m1, last) = known[0], known[-1]
            better = last > first if s["direction"] == "higher_is_better" else last < first
            word = "improved" if better else ("no change" if last == first else "worsened")
            fmt = fmt_pct if percent else fmt_number
            notes.append(f"{s.get('title') or humanise(name)}: {word}, from {fmt(first)} in {m0} to {fmt(last)} in {m1}.")
    headers = ("", *(months[i] + (" *" if in_period[i] and section.get("months") != "period" else "") for i in index), "Target")
    out: list[Block] = [Table("Month by month", headers, tuple(rows), (False, *([True] * (len(headers) - 1))),
                              note="* months in the period" if section.get("months") != "period" else "")]
    if notes:
        out.append(Para("Trajectory:", items=tuple(notes)))
    return out


def _ranked_blocks(report: Mapping[str, Any], section: Mapping[str, Any], labels: Labels, best_first: bool) -> list[Block]:
    path = section.get("metric") or ""
    value = get_path(report.get("metrics"), path)
    name = path.split(".")[-1]
    scale = labels.about(path).get("scale")
    found = []
    if isinstance(value, Mapping):
        for dist in value.values():
            if isinstance(dist, Mapping) and "counts" not in dist:
                for key, d in dist.items():
                    if d.get("total") and d.get("favourable_pct") is not None:
                        found.append((key, d))
    if not found:
        return [Para("Nothing was graded in the period.")]
    top = int(section.get("top") or 3)
    worst = labels.scale_order(scale)[-1] if labels.scale_order(scale) else None
    listed = [item["key"] for item in labels.keys.get(name, [])]

    def rank(kd: tuple[str, Mapping[str, Any]]) -> tuple[Any, ...]:
        key, d = kd
        bad = (d.get("counts") or {}).get(worst, 0) / d["total"] if worst else 0
        position = listed.index(key) if key in listed else len(listed)
        if best_first:  # most favourable first; among equals the fewest at the worst grade
            return (-d["favourable_pct"], bad, position, key)
        return (d["favourable_pct"], -bad, position, key)

    found.sort(key=rank)
    if not best_first and len(found) > 2 * top:
        # keep the two lists apart when there are enough keys: a strength is not also an area for development
        strengths = {k for k, _ in sorted(found, key=lambda kd: (-kd[1]["favourable_pct"],
                                                                 (kd[1].get("counts") or {}).get(worst, 0) / kd[1]["total"] if worst else 0,
                                                                 listed.index(kd[0]) if kd[0] in listed else len(listed), kd[0]))[:top]}
        found = [kd for kd in found if kd[0] not in strengths]
    items = []
    for key, d in found[:top]:
        text = f"{labels.key(name, key)}: {fmt_pct(d['favourable_pct'])} graded favourably ({d['total']} graded)"
        if not best_first and worst and (d.get("counts") or {}).get(worst):
            text += f"; {d['counts'][worst]} {labels.value(scale, worst)}"
        items.append(text)
    lead = "Strongest areas of practice" if best_first else "Areas graded least favourably"
    return [Para(f"{lead} ({labels.title(path)}):", items=tuple(items))]


def section_blocks(report: Mapping[str, Any], section: Mapping[str, Any], labels: Labels) -> list[Block]:
    show = section.get("show") or "metrics"
    if show == "trend":
        return _trend_blocks(report, section)
    if show in ("strengths", "development"):
        return _ranked_blocks(report, section, labels, best_first=show == "strengths")
    if show == "delivery":
        return delivery_blocks(get_path(report.get("metrics"), section.get("metric") or "kpis"))
    if show == "kpis":
        return kpi_blocks(labels.title(section.get("metric") or "kpis"), get_path(report.get("metrics"), section.get("metric") or "kpis"))
    out: list[Block] = []
    for path in section.get("metrics") or []:
        out += metric_blocks(report, path, labels)
    return out


def group_table(report: Mapping[str, Any]) -> Table | None:
    """The single-number figures for every group, one row per group."""
    groups = report.get("groups") or []
    if not groups:
        return None
    cols = scalar_metrics(report)
    headers = (humanise(report.get("level", "group")), *(title for _, title, _ in cols))
    rows = []
    for g in groups:
        figures = (report.get("by_group") or {}).get(g) or {}
        row: list[Any] = [g]
        for path, _, _ in cols:
            v = figures.get(path)
            v = v["pct"] if _is_share_detail(v) else v
            row.append(fmt_pct(v) if path.endswith("_pct") or labels_is_share(report, path) else fmt_number(v))
        rows.append(tuple(row))
    return Table(f"By {report.get('level')}", headers, tuple(rows), (False, *([True] * len(cols))))


def labels_is_share(report: Mapping[str, Any], path: str) -> bool:
    return (report.get("about") or {}).get(path, {}).get("kind") == "share"


def path_label(labels: Labels, path: str) -> str:
    """A figure's dotted path in the report's own words: metric titles, deadline titles and key labels."""
    parts = path.split(".")
    words = []
    for i, part in enumerate(parts):
        title = labels.about(".".join(parts[: i + 1])).get("title")
        if title:
            words.append(str(title))
        elif i and part in (labels.about(".".join(parts[:i])).get("deadlines") or ()):
            words.append(labels.deadline(part))
        else:
            words.append(labels.key(parts[0], part))
    return " / ".join(words)


def _is_figure(leaf: Any) -> bool:
    return isinstance(leaf, Mapping) and {"a", "b", "difference"} <= set(leaf)


def comparison_table(comparison: Mapping[str, Any], report: Mapping[str, Any] | None = None) -> Table:
    """Single-number figures side by side, then every other figure that changed (more than noise first).

    The difference is B minus A, as the header says. A simulated comparison is marked as modelled; over
    several runs each difference is a mean with its 95% interval, and 'beyond noise' when that excludes 0.
    """
    lab = comparison.get("labels") or {"a": "a", "b": "b"}
    a, b = str(lab.get("a")), str(lab.get("b"))
    metrics = comparison.get("metrics") or {}
    runs = comparison.get("runs")
    several = isinstance(runs, int) and runs > 1
    labels = Labels(report) if report else None

    def row(title: str, leaf: Mapping[str, Any]) -> tuple[Any, ...]:
        cells: tuple[Any, ...] = (title, fmt_number(leaf["a"]), fmt_number(leaf["b"]), _signed(leaf["difference"]))
        if several:
            interval = "-" if leaf.get("low") is None else f"{_signed(leaf['low'])} to {_signed(leaf['high'])}"
            if isinstance(leaf.get("runs"), int) and leaf["runs"] < runs:  # in the others, neither had a number
                interval += f" ({leaf['runs']} of {runs} runs)"
            cells += (interval, "yes" if leaf.get("distinguishable") else "no")
        return cells

    rows: list[tuple[Any, ...]] = []
    seen = set()
    for name in sorted(metrics):
        leaf = metrics[name]
        if _is_figure(leaf):
            seen.add(name)
            rows.append(row(labels.title(name) if labels else name, leaf))
    changed = [p for p in comparison.get("changed") or [] if p not in seen]
    if several:  # the differences that are more than noise first
        beyond = set(comparison.get("distinguishable") or ())
        changed = [p for p in changed if p in beyond] + [p for p in changed if p not in beyond]
    for path in changed[:MAX_ROWS]:
        leaf = get_path(metrics, path)
        if _is_figure(leaf):
            rows.append(row(path_label(labels, path) if labels else path, leaf))
    notes = []
    if comparison.get("modelled"):
        if several:
            notes.append(f"Modelled figures: the means of {runs} simulated runs of each configuration, run n of both on "
                         "the same random numbers. Interval: 95% t-interval of the paired differences; beyond noise: "
                         "the interval excludes 0.")
        else:
            notes.append("Modelled figures: one simulated run of each configuration on the same random numbers "
                         "(--runs N shows which differences are more than noise).")
    if len(changed) > MAX_ROWS:
        notes.append(f"{len(changed) - MAX_ROWS} more changed figures are in the JSON output.")
    headers = ("Figure", a, b, f"Difference ({b} minus {a})") + (("95% interval", "Beyond noise") if several else ())
    caption = "Comparison (modelled)" if comparison.get("modelled") else "Comparison"
    return Table(caption, headers, tuple(rows), (False, True, True, True) + ((True, False) if several else ()),
                 note=" ".join(notes))


def _signed(value: Any) -> str:
    if value is None:
        return "-"
    return ("+" if value > 0 else "") + fmt_number(value)


def document_blocks(report: Mapping[str, Any], comparison: Mapping[str, Any] | None = None) -> tuple[str, list[tuple[Heading, list[Block]]]]:
    """The layout's title and its sections as (heading, blocks), then groups and the comparison."""
    labels = Labels(report)
    layout = layout_for(report)
    sections = []
    for section in layout.get("sections") or []:
        title = str(section.get("title") or "")
        sections.append((Heading(2, title, anchor=_anchor(title)), section_blocks(report, section, labels)))
    table = group_table(report)
    if table is not None:
        sections.append((Heading(2, table.caption, anchor="by-group"), [table]))
    if comparison:
        sections.append((Heading(2, "Comparison", anchor="comparison"), [comparison_table(comparison, report)]))
    if report.get("warnings"):
        items = tuple(f"{w['metric']} on {w['instance']}: {w['message']}" for w in report["warnings"])
        sections.append((Heading(2, "Warnings", anchor="warnings"),
                         [Para("Some figures could not be worked out for these instances (they were left out):", items=items)]))
    return str(layout.get("title") or report.get("title") or "Report"), sections


def _anchor(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def flatten(value: Any, prefix: str = "") -> Iterable[tuple[str, Any]]:
    """(dotted path, leaf) for every leaf of nested mappings; lists are joined with ';'."""
    if isinstance(value, Mapping):
        for k in sorted(value, key=str):
            yield from flatten(value[k], f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(value, (list, tuple)):
        yield prefix, ";".join("" if v is None else str(v) for v in value)
    else:
        yield prefix, value


def heading_line(report: Mapping[str, Any], title: str | None, layout_title: str | None = None) -> tuple[str, str]:
    period = report.get("period") or {}
    name = title or layout_title or report.get("title") or "Report"
    sub = f"{period.get('label', '')} ({period.get('from')} to {period.get('to')})"
    level = report.get("level", "department")
    source = report.get("source") or {}
    detail = (f"level: {level}; {fmt_number(source.get('instances', 0))} instances read from {source.get('stores', 1)} store(s), "
              f"{fmt_number(source.get('instances_in_period', 0))} counted in the period")
    return f"{name}: {sub}", detail
