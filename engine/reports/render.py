"""Render a computed report as text, JSON, CSV, Markdown or a self-contained HTML page."""

from __future__ import annotations

import csv
import io
import json
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
    comparison_table,
    delivery_blocks,
    document_blocks,
    flatten,
    fmt_number,
    fmt_pct,
    get_path,
    group_table,
    heading_line,
    kpi_blocks,
    scalar_metrics,
)

__all__ = ["CSV_COLUMNS", "FORMATS", "render"]

FORMATS = ("text", "json", "csv", "markdown", "html")
CSV_COLUMNS = ("period_from", "period_to", "level", "group", "metric", "path", "value")


def render(report: Mapping[str, Any], fmt: str, *, title: str | None = None, comparison: Mapping[str, Any] | None = None) -> str:
    """``report`` (from ``compute_report``) as ``fmt``: text | json | csv | markdown | html.

    ``title`` replaces the report's own title; ``comparison`` (from ``compare_reports``) adds the two
    reports side by side (a table in text, Markdown and HTML; a ``comparison`` key in JSON; rows
    with group ``compare:a`` / ``compare:b`` / ``compare:difference``, and over several simulated runs
    ``compare:low`` / ``compare:high`` / ``compare:distinguishable``, in CSV).
    """
    if fmt == "json":
        out = dict(report)
        if comparison is not None:
            out["comparison"] = comparison
        return json.dumps(out, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"
    if fmt == "csv":
        return _csv(report, comparison)
    if fmt == "markdown":
        return _markdown(report, title, comparison)
    if fmt == "html":
        from .html import render_html

        return render_html(report, title=title, comparison=comparison)
    if fmt == "text":
        return _text(report, title, comparison)
    raise ValueError(f"unknown format '{fmt}' (known: {', '.join(FORMATS)})")


# --------------------------------------------------------------------------- CSV


def _csv(report: Mapping[str, Any], comparison: Mapping[str, Any] | None) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    period = report.get("period") or {}
    base = (period.get("from"), period.get("to"), report.get("level", "department"))

    def rows(group: str, metrics: Mapping[str, Any]) -> None:
        for name in sorted(metrics):
            for path, value in flatten(metrics[name]):
                writer.writerow((*base, group, name, path, _csv_value(value)))

    rows("all", report.get("metrics") or {})
    for group in report.get("groups") or []:
        rows(group, (report.get("by_group") or {}).get(group) or {})
    trend = report.get("trend") or {}
    for name, series in sorted((trend.get("series") or {}).items()):
        for month, value in zip(trend.get("months") or [], series.get("values") or [], strict=False):
            writer.writerow((*base, "all", "trend", f"{name}.{month}", _csv_value(value)))
    if comparison is not None:
        for path, leaf in _comparison_leaves(comparison.get("metrics") or {}):
            name, _, rest = path.partition(".")
            for side in ("a", "b", "difference", "low", "high", "distinguishable"):
                if side in leaf:
                    writer.writerow((*base, f"compare:{side}", name, rest, _csv_value(leaf[side])))
    return buf.getvalue()


def _comparison_leaves(node: Any, prefix: str = ""):
    if isinstance(node, Mapping):
        if {"a", "b"} <= set(node) and ("difference" in node or "same" in node):
            yield prefix, node
            return
        for k in sorted(node):
            yield from _comparison_leaves(node[k], f"{prefix}.{k}" if prefix else k)


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ";".join(map(str, value))
    return str(value)


# --------------------------------------------------------------------------- Markdown


def _md_cell(value: Any) -> str:
    text = fmt_number(value) if not isinstance(value, str) else value
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(table: Table) -> list[str]:
    lines = [f"**{_md_cell(table.caption)}**", ""]
    lines.append("| " + " | ".join(_md_cell(h) or " " for h in table.headers) + " |")
    aligns = [("---:" if (table.numeric[i] if i < len(table.numeric) else False) else "---") for i in range(len(table.headers))]
    lines.append("| " + " | ".join(aligns) + " |")
    for row in table.rows:
        cells = []
        for i, cell in enumerate(row):
            if table.status_column == i:
                text = STATUS_TEXT.get(str(cell), str(cell))
                cells.append(f"**{text}**" if cell in ("red", "amber") else text)
            else:
                cells.append(_md_cell(cell))
        lines.append("| " + " | ".join(cells) + " |")
    if table.note:
        lines += ["", f"_{table.note}_"]
    return lines + [""]


def _md_blocks(blocks: list[Block]) -> list[str]:
    lines: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            lines += ["#" * block.level + " " + block.text, ""]
        elif isinstance(block, Table):
            lines += _md_table(block)
        elif isinstance(block, KpiTrend):
            lines += _md_table(block.table())
        elif isinstance(block, Para):
            text = block.text
            if block.kind == "note":
                text = f"_{text}_"
            elif block.kind == "figure" and ":" in text:
                head, _, tail = text.partition(":")
                text = f"{head}: **{tail.strip()}**"
            lines.append(text)
            if block.items:
                lines.append("")
                lines += [f"- {item}" for item in block.items]
            lines.append("")
    return lines


def _markdown(report: Mapping[str, Any], title: str | None, comparison: Mapping[str, Any] | None) -> str:
    layout_title, sections = document_blocks(report, comparison)
    head, detail = heading_line(report, title, layout_title)
    lines = [f"# {head}", "", f"_{report.get('title', '')}; {detail}._", ""]
    for heading, blocks in sections:
        lines += [f"## {heading.text}", ""]
        lines += _md_blocks(blocks) or ["Nothing to report for this period.", ""]
    return "\n".join(lines).rstrip() + "\n"


# --------------------------------------------------------------------------- text


def _text_table(table: Table, indent: str = "  ") -> list[str]:
    rows = [tuple(table.headers)] + [tuple(STATUS_TEXT.get(str(c), str(c)) if i == table.status_column else (c if isinstance(c, str) else fmt_number(c))
                                           for i, c in enumerate(r)) for r in table.rows]
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(table.headers))]
    out = [f"{indent}{table.caption}"]
    for n, r in enumerate(rows):
        cells = []
        for i, c in enumerate(r):
            numeric = table.numeric[i] if i < len(table.numeric) else False
            cells.append(str(c).rjust(widths[i]) if numeric and n else str(c).ljust(widths[i]))
        out.append(indent + "  " + "  ".join(cells).rstrip())
    if table.note:
        out.append(f"{indent}  ({table.note})")
    return out


def _text(report: Mapping[str, Any], title: str | None, comparison: Mapping[str, Any] | None) -> str:
    head, detail = heading_line(report, title)
    lines = [head, detail, ""]
    figures = scalar_metrics(report)
    if figures:
        width = max(len(t) for _, t, _ in figures)
        lines.append("Key figures")
        for path, name, value in figures:
            shown = fmt_pct(value) if (report.get("about") or {}).get(path, {}).get("kind") == "share" else fmt_number(value)
            lines.append(f"  {name.ljust(width)}  {shown}")
        lines.append("")
    labels = Labels(report)
    for name, about in (report.get("about") or {}).items():
        if about.get("kind") == "kpis":
            for block in kpi_blocks(labels.title(name), get_path(report.get("metrics"), name) or {}, compact=True):
                if isinstance(block, (Table, KpiTrend)):
                    kpi_table = block.table() if isinstance(block, KpiTrend) else block
                    lines += [line.rstrip() for line in _text_table(kpi_table, indent="")] + [""]
                elif isinstance(block, Para):
                    lines += [block.text, *(f"  {item}" for item in block.items), ""]
            if (report.get("period") or {}).get("kind") != "month":
                for block in delivery_blocks(get_path(report.get("metrics"), name) or {}):
                    if isinstance(block, Table):
                        lines += [line.rstrip() for line in _text_table(block, indent="")] + [""]
    trend = report.get("trend") or {}
    if trend.get("months"):
        lines.append(f"Trend {trend['months'][0]} to {trend['months'][-1]}")
        for s in (trend.get("series") or {}).values():
            values = " ".join(("-" if v is None else fmt_number(v)).rjust(5) for v in s.get("values") or [])
            lines.append(f"  {str(s.get('title', '')).ljust(28)} {values}")
        lines.append("")
    table = group_table(report)
    if table is not None:
        lines += _text_table(table, indent="") + [""]
    if comparison:
        lines += _text_table(comparison_table(comparison, report), indent="") + [""]
    if report.get("warnings"):
        lines.append(f"{len(report['warnings'])} warning(s): some figures left instances out (see --format json).")
    lines.append("Full report: --format markdown, html, csv or json.")
    return "\n".join(lines).rstrip() + "\n"
