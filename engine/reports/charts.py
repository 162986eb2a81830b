"""Inline SVG charts for the HTML report: stacked bars, lines, bars and workload against capacity.

Every chart comes with a text alternative (``desc``) and the data table it was drawn from, so the
page reads the same without the picture. Colours are colour-blind safe and never the only cue:
values are written on or next to the marks.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .blocks import STATUS_TEXT, KpiTrend, Labels, Table, fmt_number, fmt_pct, get_path, humanise, target_text

__all__ = ["Chart", "build_chart", "kpi_trend_chart"]

WIDTH = 640
LABEL_W = 215
ROW_H = 28
FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,Arial,sans-serif"
INK = "#1a1a1a"
MUTED = "#595959"
GRID = "#d9d9d9"
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
DIVERGING = {
    1: ("#2166ac",),
    2: ("#2166ac", "#b2182b"),
    3: ("#2166ac", "#f4a582", "#b2182b"),
    4: ("#2166ac", "#92c5de", "#f4a582", "#b2182b"),
    5: ("#2166ac", "#92c5de", "#e0e0e0", "#f4a582", "#b2182b"),
}
DARK = {"#2166ac", "#b2182b", "#0072B2", "#D55E00", "#000000", "#009E73"}
# the parts of a deadlines metric, in the order a manager reads them
COUNT_LABELS = {"met_on_time": "On time", "met_late": "Met late", "breached": "Overdue (not met)", "open": "Still open",
                "extended": "Extended", "cancelled": "Cancelled", "paused": "Paused"}
COUNT_COLOURS = {"met_on_time": "#2166ac", "met_late": "#f4a582", "breached": "#b2182b", "open": "#bababa", "paused": "#e0e0e0",
                 "extended": "#92c5de", "cancelled": "#e0e0e0"}


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    svg: str
    desc: str
    table: Table


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _text_colour(fill: str) -> str:
    return "#ffffff" if fill in DARK else INK


def _svg(cid: str, title: str, desc: str, height: float, body: list[str]) -> str:
    return (
        f'<svg viewBox="0 0 {WIDTH} {height:.0f}" role="img" '
        f'aria-labelledby="{cid}-t {cid}-d" style="{FONT}" class="chart-svg">'
        f'<title id="{cid}-t">{_e(title)}</title><desc id="{cid}-d">{_e(desc)}</desc>'
        + "".join(body) + "</svg>"
    )


def _empty(cid: str, title: str, message: str) -> str:
    return _svg(cid, title, message, 60, [f'<text x="{WIDTH / 2}" y="34" text-anchor="middle" font-size="14" fill="{MUTED}">{_e(message)}</text>'])


def _legend(items: Sequence[tuple[str, str]], y: float) -> tuple[list[str], float]:
    """Swatches with labels, wrapping onto new lines; returns the parts and the height used."""
    parts, x, line = [], 0.0, 0
    for label, colour in items:
        w = 22 + 7.5 * len(label) + 18
        if x + w > WIDTH and x > 0:
            x, line = 0.0, line + 1
        yy = y + line * 20
        parts.append(f'<rect x="{x:.0f}" y="{yy:.0f}" width="14" height="14" fill="{colour}" stroke="#ffffff"/>'
                     f'<text x="{x + 20:.0f}" y="{yy + 11:.0f}" font-size="13" fill="{INK}">{_e(label)}</text>')
        x += w
    return parts, (line + 1) * 20 + 6


def _truncate(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _wrap(text: str, width: int, lines: int) -> list[str]:
    """``text`` in at most ``lines`` lines of about ``width`` characters, the last one cut short with an ellipsis."""
    out: list[str] = []
    words = text.split()
    while words and len(out) < lines:
        line = words.pop(0)
        while words and len(line) + 1 + len(words[0]) <= width:
            line += " " + words.pop(0)
        out.append(line)
    if words:
        out[-1] = _truncate(out[-1] + " " + " ".join(words), width)
    return [_truncate(line, width + 4) for line in out]


# --------------------------------------------------------------------------- stacked bars


def _stacked(cid: str, title: str, rows: list[tuple[str, dict[str, int]]], cats: list[tuple[str, str, str]], *, percent: bool,
             unit: str) -> str:
    """rows: (label, {category: count}); cats: (key, label, colour). Percent: each bar is 100%."""
    legend, lh = _legend([(label, colour) for _, label, colour in cats], 0)
    top = lh + 4
    plot_w = WIDTH - LABEL_W - 40
    max_total = max((sum(v.values()) for _, v in rows), default=0) or 1
    body = list(legend)
    for i, (label, values) in enumerate(rows):
        y = top + i * ROW_H
        total = sum(values.get(k, 0) for k, _, _ in cats)
        body.append(f'<text x="{LABEL_W - 8}" y="{y + 16}" text-anchor="end" font-size="13" fill="{INK}">{_e(_truncate(label))}</text>')
        scale = plot_w / (total if percent else max_total) if total else 0
        x = float(LABEL_W)
        for key, clabel, colour in cats:
            n = values.get(key, 0)
            if not n:
                continue
            w = n * scale
            share = fmt_pct(100 * n / total) if total else "-"
            body.append(f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{ROW_H - 6}" fill="{colour}" stroke="#ffffff" stroke-width="1">'
                        f'<title>{_e(label)}: {_e(clabel)} {n} ({share})</title></rect>')
            text = str(n) if not percent else (f"{100 * n / total:.0f}%" if w > 30 else str(n))
            if w >= 8 * len(text) + 4:
                body.append(f'<text x="{x + w / 2:.1f}" y="{y + 17}" text-anchor="middle" font-size="12" fill="{_text_colour(colour)}">{_e(text)}</text>')
            x += w
        suffix = f"n={total}" if percent else f"{total} {unit}".strip()
        body.append(f'<text x="{x + 4:.1f}" y="{y + 16}" font-size="11" fill="{MUTED}">{_e(suffix if total else "none")}</text>')
    height = top + len(rows) * ROW_H + 6
    desc = "; ".join(f"{label}: " + (", ".join(f"{cl} {values.get(k, 0)}" for k, cl, _ in cats) if sum(values.values()) else "none")
                     for label, values in rows)
    return _svg(cid, title, desc, height, body)


def _scale_colours(n: int) -> tuple[str, ...]:
    return DIVERGING.get(n) or OKABE_ITO[:n]


def _distribution_chart(spec: Mapping[str, Any], report: Mapping[str, Any], labels: Labels) -> Chart | None:
    path = spec["metric"]
    value = get_path(report.get("metrics"), path)
    about = labels.about(path)
    if not isinstance(value, Mapping):
        return None
    scale = about.get("scale")
    name = path.split(".")[-1]
    rows: list[tuple[str, dict[str, int]]] = []
    entries = [*(about.get("values") or []), *(about.get("each") or [])] or sorted(value)
    for entry in entries:
        dist = value.get(entry)
        if isinstance(dist, Mapping) and "counts" in dist:
            rows.append((humanise(entry), dict(dist["counts"])))
    for entry in entries:
        dist = value.get(entry)
        if isinstance(dist, Mapping) and "counts" not in dist:
            for key in labels.key_order(name, dist.keys()):
                rows.append((labels.key(name, key), dict(dist[key].get("counts") or {})))
    order = labels.scale_order(scale) or sorted({c for _, v in rows for c in v})
    colours = _scale_colours(len(order))
    cats = [(k, labels.value(scale, k), colours[i % len(colours)]) for i, k in enumerate(order)]
    cid = f"chart-{spec['id']}"
    title = spec["title"]
    if not any(sum(v.values()) for _, v in rows):
        svg = _empty(cid, title, "Nothing was graded in this period.")
        desc = "Nothing was graded in this period."
    else:
        svg = _stacked(cid, title, rows, cats, percent=True, unit="")
        desc = "Each bar is 100% of the audits graded for that row; the shares are written on the bars and n is the number graded."
    table = Table(title, ("", *(c[1] for c in cats), "Total"),
                  tuple((label, *(v.get(k, 0) for k, _, _ in cats), sum(v.values())) for label, v in rows),
                  (False, *([True] * (len(cats) + 1))))
    return Chart(cid, title, svg, desc, table)


def _grouped_counts_chart(spec: Mapping[str, Any], report: Mapping[str, Any], labels: Labels) -> Chart | None:
    """A metric split by group whose entries are count mappings (e.g. deadlines with by + combine)."""
    path = spec["metric"]
    value = get_path(report.get("metrics"), path)
    if not isinstance(value, Mapping):
        return None
    cats_keys = list(spec.get("categories") or [])
    if not cats_keys:
        cats_keys = sorted({k for v in value.values() if isinstance(v, Mapping) for k, n in v.items() if isinstance(n, (int, float))})
    palette = OKABE_ITO
    cats = [(k, COUNT_LABELS.get(k, humanise(k)), COUNT_COLOURS.get(k, palette[i % len(palette)])) for i, k in enumerate(cats_keys)]
    rows = []
    for group, counts in value.items():
        if isinstance(counts, Mapping):
            rows.append((humanise(group), {k: int(counts.get(k) or 0) for k in cats_keys}, counts))
    rows.sort(key=lambda r: (-sum(r[1].values()), r[0]))
    limit = int(spec.get("limit") or 30)
    drawable = [(label, v) for label, v, _ in rows if sum(v.values())]
    shown = drawable[:limit]
    cid = f"chart-{spec['id']}"
    title = spec["title"]
    svg = _stacked(cid, title, shown, cats, percent=False, unit="") if shown else _empty(cid, title, "None in this period.")
    extra = ("due",) if rows and "due" in rows[0][2] else ()
    headers = ("", *(c[1] for c in cats), *(humanise(e) for e in extra))
    table = Table(title, headers, tuple((label, *(v[k] for k in cats_keys), *(raw.get(e, 0) for e in extra)) for label, v, raw in rows),
                  (False, *([True] * (len(headers) - 1))),
                  note=(f"the {limit} largest of {len(drawable)} are drawn" if len(drawable) > limit else ""))
    desc = "; ".join(f"{label}: " + ", ".join(f"{c[1]} {v[c[0]]}" for c in cats) for label, v in shown) or "None in this period."
    return Chart(cid, title, svg, desc, table)


# --------------------------------------------------------------------------- line


def _line_chart(spec: Mapping[str, Any], report: Mapping[str, Any], labels: Labels) -> Chart | None:
    trend = report.get("trend") or {}
    months = list(trend.get("months") or [])
    known = trend.get("series") or {}
    series = [(name, s) for name in spec.get("series") or [] if (s := known.get(name))]
    cid = f"chart-{spec['id']}"
    title = spec["title"]
    if not months or not series:
        return None
    in_period = list(trend.get("in_period") or [False] * len(months))
    percent = all(n.endswith("_pct") or "%" in (s.get("title") or "") for n, s in series)
    values = [v for _, s in series for v in s["values"] if v is not None]
    targets = [s.get("target") for _, s in series if s.get("target") is not None]
    top = 100.0 if percent else max([*values, *targets, 1]) * 1.15
    legend, lh = _legend([(s.get("title") or humanise(n), OKABE_ITO[i % 8]) for i, (n, s) in enumerate(series)]
                         + ([("Target", "#595959")] if targets else []), 0)
    left, right, y0 = 48, WIDTH - 34, lh + 10
    plot_h = 200
    y1 = y0 + plot_h
    step = (right - left) / max(1, len(months) - 1) if len(months) > 1 else 0

    def X(i: int) -> float:
        return left + (i * step if len(months) > 1 else (right - left) / 2)

    def Y(v: float) -> float:
        return y1 - (v / top) * plot_h if top else y1

    body = list(legend)
    # the months of the period, shaded
    idx = [i for i, p in enumerate(in_period) if p]
    if idx:
        xa = X(idx[0]) - (step / 2 if step else 20)
        xb = X(idx[-1]) + (step / 2 if step else 20)
        body.append(f'<rect x="{max(left - 8, xa):.1f}" y="{y0}" width="{min(right + 8, xb) - max(left - 8, xa):.1f}" height="{plot_h}" fill="#f0f4f8">'
                    f'<title>The months of the report period</title></rect>')
    for k in range(5):
        v = top * k / 4
        y = Y(v)
        body.append(f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="{GRID}" stroke-width="1"/>'
                    f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="{MUTED}">'
                    f'{_e(fmt_number(round(v, 1)) + ("%" if percent else ""))}</text>')
    every = max(1, -(-len(months) // 10))  # at most about ten month labels
    for i, m in enumerate(months):
        if i % every == 0 or i == len(months) - 1:
            body.append(f'<text x="{X(i):.1f}" y="{y1 + 16}" text-anchor="middle" font-size="11" fill="{INK}">{_e(m)}</text>')
    for _name, s in series:
        t = s.get("target")
        if t is not None:
            body.append(f'<line x1="{left}" y1="{Y(t):.1f}" x2="{right}" y2="{Y(t):.1f}" stroke="#595959" stroke-width="1.5" stroke-dasharray="6 4">'
                        f'<title>Target {fmt_number(t)}{"%" if percent else ""}</title></line>'
                        f'<text x="{right}" y="{Y(t) - 4:.1f}" text-anchor="end" font-size="11" fill="#595959">'
                        f'Target {_e(fmt_number(t))}{"%" if percent else ""}</text>')
    for si, (_name, s) in enumerate(series):
        colour = OKABE_ITO[si % 8]
        path: list[str] = []
        for i, v in enumerate(s["values"]):
            if v is None:
                if path:
                    body.append(f'<polyline points="{" ".join(path)}" fill="none" stroke="{colour}" stroke-width="2.5"/>')
                path = []
                continue
            path.append(f"{X(i):.1f},{Y(v):.1f}")
        if path:
            body.append(f'<polyline points="{" ".join(path)}" fill="none" stroke="{colour}" stroke-width="2.5"/>')
        for i, v in enumerate(s["values"]):
            if v is None:
                continue
            shown = fmt_pct(v) if percent else fmt_number(v)
            body.append(f'<circle cx="{X(i):.1f}" cy="{Y(v):.1f}" r="4" fill="{colour}"><title>{_e(months[i])}: {_e(shown)}</title></circle>')
            if len(series) == 1:
                body.append(f'<text x="{X(i):.1f}" y="{Y(v) - 8:.1f}" text-anchor="middle" font-size="11" fill="{INK}">{_e(shown)}</text>')
    if not values:
        body.append(f'<text x="{(left + right) / 2}" y="{y0 + plot_h / 2}" text-anchor="middle" font-size="13" fill="{MUTED}">'
                    'No figures in these months.</text>')
    height = y1 + 28
    desc = "; ".join(f"{s.get('title') or name}: " + ", ".join(f"{m} {'no data' if v is None else (fmt_pct(v) if percent else fmt_number(v))}"
                                                              for m, v in zip(months, s["values"], strict=False))
                     + (f" (target {fmt_number(s['target'])})" if s.get("target") is not None else "") for name, s in series)
    svg = _svg(cid, title, desc, height, body)
    headers = ("Month", *((s.get("title") or humanise(n)) for n, s in series))
    rows = tuple((m + (" (in period)" if in_period[i] else ""), *((fmt_pct(s["values"][i]) if percent else fmt_number(s["values"][i])) for _, s in series))
                 for i, m in enumerate(months))
    return Chart(cid, title, svg, desc, Table(title, headers, rows, (False, *([True] * len(series)))))


# --------------------------------------------------------------------------- workload and plain bars


def _hbars(cid: str, title: str, rows: list[tuple[str, float, float | None, str]], *, unit: str) -> str:
    """rows: (label, value, reference such as capacity or None, note)."""
    refs = [r for _, _, r, _ in rows if r is not None]
    top = max([v for _, v, _, _ in rows] + refs + [1]) * 1.1
    plot_w = WIDTH - LABEL_W - 60
    same_ref = len(set(refs)) == 1 and len(refs) == len(rows)
    legend_items = [("Within capacity" if refs else unit or "Value", "#0072B2")]
    if refs:
        legend_items += [("Over capacity", "#D55E00"), ("Capacity (black line)", INK)]
    legend, lh = _legend(legend_items, 0)
    y0 = lh + (16 if same_ref else 4)
    body = list(legend)
    for i, (label, v, ref, note) in enumerate(rows):
        y = y0 + i * ROW_H
        over = ref is not None and v > ref
        colour = "#D55E00" if over else "#0072B2"
        w = plot_w * v / top
        body.append(f'<text x="{LABEL_W - 8}" y="{y + 16}" text-anchor="end" font-size="13" fill="{INK}">{_e(_truncate(label))}</text>')
        body.append(f'<rect x="{LABEL_W}" y="{y + 4}" width="{w:.1f}" height="{ROW_H - 8}" fill="{colour}">'
                    f'<title>{_e(label)}: {_e(fmt_number(v))}{_e(note)}</title></rect>')
        body.append(f'<text x="{LABEL_W + w + 4:.1f}" y="{y + 16}" font-size="11" fill="{INK}">{_e(fmt_number(v))}{" over" if over else ""}</text>')
        if ref is not None and not same_ref:
            xr = LABEL_W + plot_w * ref / top
            body.append(f'<line x1="{xr:.1f}" y1="{y + 1}" x2="{xr:.1f}" y2="{y + ROW_H - 1}" stroke="{INK}" stroke-width="2"/>')
    if same_ref and rows:
        xr = LABEL_W + plot_w * refs[0] / top
        y_end = y0 + len(rows) * ROW_H
        body.append(f'<line x1="{xr:.1f}" y1="{y0 - 4}" x2="{xr:.1f}" y2="{y_end}" stroke="{INK}" stroke-width="2" stroke-dasharray="5 3">'
                    f'<title>Capacity {fmt_number(refs[0])}</title></line>'
                    f'<text x="{xr:.1f}" y="{y0 - 6}" text-anchor="middle" font-size="11" fill="{INK}">Capacity {_e(fmt_number(refs[0]))}</text>')
    height = y0 + len(rows) * ROW_H + 8
    desc = "; ".join(f"{label} {fmt_number(v)}" + (f" (capacity {fmt_number(r)}{', over' if v > r else ''})" if r is not None else "")
                     for label, v, r, _ in rows)
    return _svg(cid, title, desc, height, body)


def _workload_chart(spec: Mapping[str, Any], report: Mapping[str, Any], labels: Labels) -> Chart | None:
    value = get_path(report.get("metrics"), spec["metric"])
    if not isinstance(value, Mapping):
        return None
    people = value.get("people") or {}
    ranked = sorted(people.items(), key=lambda kv: (-kv[1]["peak"], -kv[1]["average"], kv[0]))
    limit = int(spec.get("limit") or 30)
    cid = f"chart-{spec['id']}"
    title = spec["title"]
    rows = [(who, float(p["peak"]), p.get("capacity"), f" in hand in the busiest week (average {fmt_number(p['average'])})")
            for who, p in ranked[:limit]]
    svg = _hbars(cid, title, rows, unit="In hand") if rows else _empty(cid, title, "Nobody had work in hand in this period.")
    desc = (f"{len(people)} people; " + "; ".join(f"{r[0]} peak {fmt_number(r[1])}" + (f" against capacity {fmt_number(r[2])}" if r[2] is not None else "")
                                                 for r in rows)) if rows else "Nobody had work in hand."
    weeks = value.get("weeks") or []
    headers = ("Person", "Capacity", *(f"w/c {w[5:]}" for w in weeks), "Peak", "Weeks over")
    trows = tuple((who, fmt_number(p.get("capacity")), *(p["weeks"].get(w, 0) for w in weeks), p["peak"], p["weeks_over_capacity"])
                  for who, p in ranked)
    note = f"the {limit} busiest of {len(people)} are drawn" if len(people) > limit else ""
    return Chart(cid, title, svg, desc, Table(title, headers, trows, (False, *([True] * (len(headers) - 1))), note=note))


def _bars_chart(spec: Mapping[str, Any], report: Mapping[str, Any], labels: Labels) -> Chart | None:
    value = get_path(report.get("metrics"), spec["metric"])
    if not isinstance(value, Mapping):
        return None
    field = spec.get("value")
    # keys that are the terms of a vocabulary (the counts of a distribution) take its labels
    parts = spec["metric"].split(".")
    vocabulary = next((v for i in range(len(parts), 0, -1) if (v := labels.about(".".join(parts[:i])).get("vocabulary"))), None)
    rows: list[tuple[str, float, float | None, str]] = []
    for k, v in value.items():
        n = get_path(v, field) if field else v
        if isinstance(n, Mapping) and "pct" in n:
            n = n["pct"]
        if isinstance(n, (int, float)) and not isinstance(n, bool):
            rows.append((labels.value(vocabulary, k) if vocabulary else humanise(k), float(n), None, ""))
    rows.sort(key=lambda r: (-r[1], r[0]))
    limit = int(spec.get("limit") or 30)
    cid = f"chart-{spec['id']}"
    title = spec["title"]
    svg = _hbars(cid, title, rows[:limit], unit="") if rows else _empty(cid, title, "None in this period.")
    desc = "; ".join(f"{r[0]} {fmt_number(r[1])}" for r in rows[:limit]) or "None in this period."
    return Chart(cid, title, svg, desc, Table(title, ("", "Value"), tuple((r[0], fmt_number(r[1])) for r in rows), (False, True)))


def build_chart(spec: Mapping[str, Any], report: Mapping[str, Any], labels: Labels) -> Chart | None:
    """The chart a presentation entry asks for, or None when the report has nothing to draw it from."""
    kind = spec.get("type")
    if kind == "line":
        return _line_chart(spec, report, labels)
    if kind == "workload":
        return _workload_chart(spec, report, labels)
    if kind == "bars":
        return _bars_chart(spec, report, labels)
    if kind == "stacked_bars":
        if labels.about(spec["metric"]).get("kind") == "distribution":
            return _distribution_chart(spec, report, labels)
        return _grouped_counts_chart(spec, report, labels)
    return None


# --------------------------------------------------------------------------- KPI trends


# Okabe-Ito colours with a shape each, so that the status reads without colour: on target, within tolerance, off target
STATUS_MARKS = {"green": ("#009E73", "circle", "On target"), "amber": ("#E69F00", "triangle", "Within tolerance"),
                "red": ("#D55E00", "square", "Off target")}
TREND_ROW_H = 44


def _mark(status: str, x: float, y: float, tip: str) -> str:
    colour, shape, _ = STATUS_MARKS.get(status, ("#ffffff", "hollow", ""))
    title = f"<title>{_e(tip)}</title>"
    if shape == "triangle":
        points = f"M{x:.1f},{y - 5.5:.1f} L{x + 5.5:.1f},{y + 4.5:.1f} L{x - 5.5:.1f},{y + 4.5:.1f} Z"
        return f'<path d="{points}" fill="{colour}" stroke="{INK}" stroke-width="0.6">{title}</path>'
    if shape == "square":
        return f'<rect x="{x - 4.5:.1f}" y="{y - 4.5:.1f}" width="9" height="9" fill="{colour}" stroke="{INK}" stroke-width="0.6">{title}</rect>'
    if shape == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{colour}" stroke="{INK}" stroke-width="0.6">{title}</circle>'
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="#ffffff" stroke="{MUTED}" stroke-width="1.5">{title}</circle>'


def _legend_marks() -> tuple[list[str], float]:
    parts, x = [], 0.0
    for status, (_, _, label) in STATUS_MARKS.items():
        parts.append(_mark(status, x + 7, 9, label))
        parts.append(f'<text x="{x + 18:.0f}" y="13" font-size="13" fill="{INK}">{_e(label)}</text>')
        x += 28 + 7.5 * len(label)
    parts.append(f'<line x1="{x:.0f}" y1="9" x2="{x + 22:.0f}" y2="9" stroke="{MUTED}" stroke-width="1.5" stroke-dasharray="5 3"/>'
                 f'<text x="{x + 28:.0f}" y="13" font-size="13" fill="{INK}">Target</text>')
    return parts, 26


def kpi_trend_chart(block: KpiTrend, cid: str) -> Chart:
    """Each KPI of a table month by month: a small line against its target, each month marked by its status."""
    title = block.caption
    months = list(block.months)
    legend, lh = _legend_marks()
    left, right = LABEL_W + 14, WIDTH - 104
    step = (right - left) / max(1, len(months) - 1)
    head = lh + 14
    body = list(legend)

    def x_of(i: int) -> float:
        return left + i * step if len(months) > 1 else (left + right) / 2

    for i, m in enumerate(months):
        body.append(f'<text x="{x_of(i):.1f}" y="{head}" text-anchor="middle" font-size="11" fill="{INK}">{_e(m)}</text>')
    top = head + 8
    for r, row in enumerate(block.rows):
        y0 = top + r * TREND_ROW_H
        percent = row.unit == "percent"
        shown = [v for v in row.values if v is not None]
        span = [*shown, *([row.target] if row.target is not None else [])]
        lo, hi = (min(span), max(span)) if span else (0.0, 1.0)
        pad = max((hi - lo) * 0.15, 2.0 if percent else max(abs(hi) * 0.05, 0.5))
        lo, hi = lo - pad, hi + pad
        if percent:
            lo, hi = max(lo, 0.0), min(hi, 100.0)
        y_top, y_bottom = y0 + 8, y0 + TREND_ROW_H - 8

        def y_of(v: float, lo: float = lo, hi: float = hi, y_top: float = y_top, y_bottom: float = y_bottom) -> float:
            return y_bottom - (v - lo) / (hi - lo) * (y_bottom - y_top) if hi > lo else (y_top + y_bottom) / 2

        if r:
            body.append(f'<line x1="0" y1="{y0:.1f}" x2="{WIDTH}" y2="{y0:.1f}" stroke="{GRID}" stroke-width="1"/>')
        lines = _wrap(row.title, 30, 2)
        first = y0 + TREND_ROW_H / 2 + 4 - 7 * (len(lines) - 1)
        body.append(f'<text x="{LABEL_W - 8}" y="{first:.1f}" text-anchor="end" font-size="12" fill="{INK}"><title>{_e(row.title)}</title>'
                    + "".join(f'<tspan x="{LABEL_W - 8}" dy="{0 if n == 0 else 14}">{_e(line)}</tspan>' for n, line in enumerate(lines))
                    + "</text>")
        if row.target is not None and shown:
            yt = y_of(row.target)
            body.append(f'<line x1="{left - 8}" y1="{yt:.1f}" x2="{right + 8}" y2="{yt:.1f}" stroke="{MUTED}" stroke-width="1.5" stroke-dasharray="5 3">'
                        f'<title>Target {_e(target_text(row.target, row.direction, row.unit))}</title></line>')
        path: list[str] = []
        for i, v in enumerate([*row.values, None]):
            if v is None:
                if len(path) > 1:
                    body.append(f'<polyline points="{" ".join(path)}" fill="none" stroke="#0072B2" stroke-width="2"/>')
                path = []
                continue
            path.append(f"{x_of(i):.1f},{y_of(v):.1f}")
        for i, (v, status) in enumerate(zip(row.values, row.statuses, strict=True)):
            if v is None:
                continue
            text = fmt_pct(v) if percent else fmt_number(v)
            body.append(_mark(status, x_of(i), y_of(v), f"{row.title}, {months[i]}: {text} ({STATUS_TEXT.get(status, status)})"))
        last = next(((m, v, s) for m, v, s in zip(reversed(months), reversed(row.values), reversed(row.statuses), strict=True)
                     if v is not None), None)
        if last is not None:  # the latest month's figure (the table above has the period's)
            text = fmt_pct(last[1]) if percent else fmt_number(last[1])
            body.append(f'<text x="{right + 16}" y="{y0 + TREND_ROW_H / 2 - 1:.1f}" font-size="12" font-weight="600" fill="{INK}">{_e(text)}</text>'
                        f'<text x="{right + 16}" y="{y0 + TREND_ROW_H / 2 + 12:.1f}" font-size="11" fill="{MUTED}">'
                        f'{_e(last[0])}</text>')
        else:
            body.append(f'<text x="{(left + right) / 2:.1f}" y="{y0 + TREND_ROW_H / 2 + 4:.1f}" text-anchor="middle" font-size="12" fill="{MUTED}">'
                        'No figures in these months</text>')
    height = top + len(block.rows) * TREND_ROW_H + 6

    def described(row: Any) -> str:
        parts = [f"{m} {'no figure' if v is None else (fmt_pct(v) if row.unit == 'percent' else fmt_number(v))}"
                 + (f" ({STATUS_TEXT.get(s, s).lower()})" if v is not None else "") for m, v, s in zip(months, row.values, row.statuses, strict=True)]
        return f"{row.title}: " + ", ".join(parts) + f"; target {target_text(row.target, row.direction, row.unit)}"

    desc = "; ".join(described(row) for row in block.rows)
    svg = _svg(cid, title, desc, height, body)
    return Chart(cid, title, svg, "Each row is one indicator month by month against its target (dashed): a circle is on target, "
                                  "a triangle within the tolerance, a square off target; on the right, the latest month's figure.",
                 block.table())
