"""The HTML report: one self-contained, printable, accessible page with inline SVG charts (no scripts)."""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from .blocks import (
    STATUS_TEXT,
    Block,
    Heading,
    KpiTrend,
    Labels,
    Para,
    Table,
    document_blocks,
    fmt_number,
    fmt_pct,
    heading_line,
    scalar_metrics,
)
from .charts import Chart, build_chart, kpi_trend_chart

__all__ = ["render_html"]

CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; color: #1a1a1a; background: #fff; }
main { max-width: 1120px; margin: 0 auto; padding: 16px; }
header { border-bottom: 3px solid #2166ac; margin-bottom: 12px; }
h1 { font-size: 1.6rem; margin: 0.2em 0; }
h2 { font-size: 1.25rem; border-bottom: 1px solid #9ab; padding-bottom: 3px; margin-top: 1.6em; }
h3 { font-size: 1.05rem; margin: 1em 0 0.3em; }
h4 { font-size: 0.95rem; margin: 0.8em 0 0.3em; }
.sub { color: #404040; margin: 0 0 8px; }
nav ol { columns: 2 16em; padding-left: 1.2em; margin: 4px 0 8px; }
.tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 8px; list-style: none; padding: 0; margin: 8px 0; }
.tile { border: 1px solid #c8c8c8; border-radius: 6px; padding: 8px 10px; }
.tile .v { display: block; font-size: 1.6rem; font-weight: 700; font-variant-numeric: tabular-nums; }
.tile .l { font-size: 0.85rem; color: #404040; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 480px), 1fr)); gap: 16px; }
figure.chart { margin: 0; border: 1px solid #d0d0d0; border-radius: 6px; padding: 10px; break-inside: avoid; page-break-inside: avoid; }
figure.chart h3 { margin: 0 0 6px; }
.chart-svg { width: 100%; height: auto; display: block; }
.alt { font-size: 0.8rem; color: #404040; margin: 6px 0 0; }
figure.chart table { font-size: 0.78rem; }
figure.chart th, figure.chart td { padding: 2px 4px; }
.table-wrap { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 6px 0 12px; }
caption { text-align: left; font-weight: 600; padding: 4px 0; caption-side: top; }
th, td { border: 1px solid #c8c8c8; padding: 3px 7px; text-align: left; vertical-align: top; }
thead th { background: #eef2f6; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
p.figure { margin: 4px 0; }
p.figure strong { font-size: 1.05rem; }
p.note { color: #404040; font-style: italic; }
.tnote { font-size: 0.8rem; color: #404040; margin: -8px 0 12px; }
.rag { display: inline-block; padding: 0 8px; border-radius: 10px; font-weight: 600; white-space: nowrap; }
.rag-green { background: #d9f0d3; color: #00441b; }
.rag-amber { background: #fdd49e; color: #662506; }
.rag-red { background: #b2182b; color: #fff; }
.rag-no_data, .rag-no_target, .rag-not_computed, .rag-not_imported { background: #e8e8e8; color: #333; }
section figure.chart { margin: 6px 0 16px; max-width: 760px; }
footer { margin-top: 2em; font-size: 0.8rem; color: #404040; border-top: 1px solid #ccc; padding-top: 6px; }
@media (max-width: 560px) { body { font-size: 14px; } main { padding: 8px; } h1 { font-size: 1.3rem; } }
@media print {
  body { font-size: 10pt; }
  main { max-width: none; padding: 0; }
  nav { display: none; }
  .charts { display: block; }
  figure.chart { margin: 0 0 10px; }
  h2, h3 { break-after: avoid; page-break-after: avoid; }
  table { break-inside: auto; }
  tr { break-inside: avoid; }
  .table-wrap { overflow: visible; }
  .rag-red { border: 1px solid #000; }
}
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _cell(value: Any) -> str:
    return value if isinstance(value, str) else fmt_number(value)


def _table(table: Table, *, tid: str = "") -> str:
    head = "".join(f'<th scope="col">{_e(h)}</th>' for h in table.headers)
    body = []
    for row in table.rows:
        cells = []
        for i, value in enumerate(row):
            if i == 0:
                cells.append(f'<th scope="row">{_e(_cell(value))}</th>')
            elif table.status_column == i:
                key = str(value)
                cells.append(f'<td><span class="rag rag-{_e(key)}">{_e(STATUS_TEXT.get(key, key))}</span></td>')
            else:
                numeric = table.numeric[i] if i < len(table.numeric) else False
                cls = ' class="n"' if numeric else ""
                cells.append(f"<td{cls}>{_e(_cell(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    ident = f' id="{_e(tid)}"' if tid else ""
    out = (f'<div class="table-wrap"><table{ident}><caption>{_e(table.caption)}</caption><thead><tr>{head}</tr></thead>'
           f'<tbody>{"".join(body)}</tbody></table></div>')
    if table.note:
        out += f'<p class="tnote">{_e(table.note)}</p>'
    return out


def _blocks(blocks: list[Block]) -> str:
    parts = []
    for block in blocks:
        if isinstance(block, Heading):
            level = min(6, max(3, block.level))
            parts.append(f"<h{level}>{_e(block.text)}</h{level}>")
        elif isinstance(block, Table):
            parts.append(_table(block))
        elif isinstance(block, KpiTrend):
            parts.append(_figure(kpi_trend_chart(block, f"chart-{block.anchor or 'kpi-trend'}")))
        elif isinstance(block, Para):
            text = _e(block.text)
            if block.kind == "figure" and ":" in block.text:
                head, _, tail = block.text.partition(":")
                text = f"{_e(head)}: <strong>{_e(tail.strip())}</strong>"
            parts.append(f'<p class="{_e(block.kind)}">{text}</p>')
            if block.items:
                parts.append("<ul>" + "".join(f"<li>{_e(i)}</li>" for i in block.items) + "</ul>")
    return "\n".join(parts)


def _figure(chart: Chart) -> str:
    return (f'<figure class="chart" id="{_e(chart.id)}" aria-labelledby="{_e(chart.id)}-h">'
            f'<h3 id="{_e(chart.id)}-h">{_e(chart.title)}</h3>{chart.svg}'
            f'<figcaption class="alt">{_e(chart.desc)}</figcaption>'
            f'{_table(chart.table, tid=chart.id + "-data")}</figure>')


def _tiles(report: Mapping[str, Any]) -> str:
    items = []
    for path, title, value in scalar_metrics(report):
        kind = (report.get("about") or {}).get(path, {}).get("kind")
        shown = fmt_pct(value) if kind == "share" else fmt_number(value)
        items.append(f'<li class="tile"><span class="v">{_e(shown)}</span><span class="l">{_e(title)}</span></li>')
    return f'<ul class="tiles">{"".join(items)}</ul>' if items else ""


def render_html(report: Mapping[str, Any], *, title: str | None = None, comparison: Mapping[str, Any] | None = None) -> str:
    labels = Labels(report)
    layout_title, sections = document_blocks(report, comparison)
    head, detail = heading_line(report, title, layout_title)
    charts = []
    for spec in (report.get("presentation") or {}).get("charts") or []:
        chart = build_chart(spec, report, labels)
        if chart is None:
            continue
        charts.append(_figure(chart))
    toc = ['<li><a href="#key-figures">Key figures</a></li>']
    if charts:
        toc.append('<li><a href="#charts">Charts</a></li>')
    body = []
    for heading, blocks in sections:
        anchor = heading.anchor or "section"
        toc.append(f'<li><a href="#{_e(anchor)}">{_e(heading.text)}</a></li>')
        body.append(f'<section aria-labelledby="{_e(anchor)}"><h2 id="{_e(anchor)}">{_e(heading.text)}</h2>\n'
                    f'{_blocks(blocks) or "<p>Nothing to report for this period.</p>"}</section>')
    page = [
        "<!DOCTYPE html>",
        '<html lang="en-GB">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(head)}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        "<main>",
        f'<header><h1>{_e(head)}</h1><p class="sub">{_e(report.get("title", ""))}; {_e(detail)}.</p></header>',
        f'<nav aria-label="Contents"><ol>{"".join(toc)}</ol></nav>',
        f'<section aria-labelledby="key-figures"><h2 id="key-figures">Key figures</h2>{_tiles(report)}</section>',
    ]
    if charts:
        page.append(f'<section aria-labelledby="charts"><h2 id="charts">Charts</h2><div class="charts">{"".join(charts)}</div></section>')
    page += body
    period = report.get("period") or {}
    page += [
        (f'<footer>Worked out by qaflow from workflow history for {_e(period.get("from"))} to {_e(period.get("to"))} '
         f'(report definition "{_e(report.get("report", ""))}"). Every chart has its figures in the table beneath it.</footer>'),
        "</main>",
        "</body>",
        "</html>",
    ]
    return "\n".join(page) + "\n"
