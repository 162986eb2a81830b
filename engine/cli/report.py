"""``qaflow report``: metrics from a store's workflow history, as text, JSON, CSV, Markdown or HTML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..errors import UsageError
from ..periods import PERIOD_HELP
from ..reports.render import FORMATS
from .app import Settings, _config_only, _store, main, pass_settings


def parse_capacity(values: tuple[str, ...]) -> dict[str, float]:
    """``3`` (everyone) and ``P-1=2`` (one person) into ``{"*": 3.0, "P-1": 2.0}``."""
    out: dict[str, float] = {}
    for value in values:
        who, sep, number = value.rpartition("=")
        key = who.strip() if sep else "*"
        try:
            amount = float(number)
        except ValueError:
            raise UsageError(f"bad --capacity '{value}': write a number (everyone) or PERSON=NUMBER") from None
        if amount <= 0 or (sep and not key):
            raise UsageError(f"bad --capacity '{value}': write a number above 0 (everyone) or PERSON=NUMBER")
        out[key] = amount
    return out


@main.command("report")
@click.option("--period", required=True, metavar="PERIOD",
              help=f"The period: {PERIOD_HELP}. FY2026/27-Q3 is the FINANCIAL quarter Oct-Dec 2026, CY2026-Q3 the CALENDAR "
                   "quarter Jul-Sep 2026; a bare 2026Q3 is read as the financial quarter when the configuration has "
                   "programmes (config/programmes/), else as the calendar quarter. The reading used is printed on stderr.")
@click.option("--level", default="department", show_default=True, metavar="LEVEL",
              help="Split every figure by department (all together), service, team or practitioner (the levels of the report definition).")
@click.option("--db", default=None, metavar="TARGET",
              help="Store to read: a SQLite file or postgresql://... (default: $QAFLOW_DB or qaflow.db).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="text (a terminal summary, default), json, csv (one row per figure), markdown (the monthly briefing or the "
                   "quarterly report) or html (one page with charts).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write to this file instead of standard output.")
@click.option("--report", "report_name", default=None, metavar="ID_OR_FILE",
              help="Report definition: an id in <config>/reports/ or a YAML file (default: qa_report).")
@click.option("--capacity", multiple=True, metavar="N|PERSON=N",
              help="Weekly capacity for workload: a number for everyone, or PERSON=N for one person (repeat as needed).")
@click.option("--title", default=None, help="A title instead of the report's own.")
@click.option("--no-trend", is_flag=True, help="Leave out the month-by-month trajectory (faster on large stores).")
@click.option("--color", type=click.Choice(["auto", "always", "never"]), default=None, expose_value=False,
              callback=_store("color"), help="Colour output (default: auto; NO_COLOR turns auto off).")
@_config_only
@pass_settings
def report_command(settings: Settings, period: str, level: str, db: str | None, fmt: str | None, out: Path | None,
                   report_name: str | None, capacity: tuple[str, ...], title: str | None, no_trend: bool) -> None:
    """Work out the QA report for PERIOD from the workflow history in a store.

    What is counted (audits allocated and completed, submissions on time, grades overall and by
    domain, moderation, Inadequate-audit follow-up, complaints, escalations, surveys, workload and
    the KPIs with RAG status) is defined in config/reports/qa_report.yaml; see docs/reports.md.
    A one-month period gives the monthly managers' briefing, a longer one the quarterly QA report.
    Annual reports (--report iro_annual_report, --report complaints_annual) take a financial year,
    written 2026/27 (1 April 2026 to 31 March 2027).

    \b
    Examples:
      qaflow report --period 2026-10 --format markdown
      qaflow report --period FY2026/27-Q3 --level team --format html --out q3.html
      qaflow report --period 2026-10-01..2026-12-31 --format csv --db sim.db
      qaflow report --period 2026/27 --report complaints_annual --format markdown
    """
    from ..periods import describe_period, parse_period
    from ..reports.definition import load_report
    from ..reports.metrics import compute_report
    from ..reports.render import render
    from ..store.open import open_store

    parse_period(period)  # a period that cannot be read at all stops here, before the configuration is read
    capacities = parse_capacity(capacity)
    fmt = fmt or (settings.format if settings.format in FORMATS else "text")
    definitions = settings.definitions()
    report_def = load_report(definitions, report_name)
    # the programmes count quarters from April: where there are some, a bare 2026Q3 is their quarter
    chosen = parse_period(period, bare_quarter="financial" if report_def.programmes else "calendar")
    if chosen.kind in ("quarter", "year"):  # say whose quarters (or years) these are
        settings.note(describe_period(period, chosen))
    if level != "department" and level not in report_def.levels:
        raise UsageError(f"unknown level '{level}' (known: {', '.join(['department', *sorted(report_def.levels)])})")
    store: Any = open_store(db, readonly=True)
    try:
        report = compute_report(store, definitions, start=chosen.start, end=chosen.end, level=level,
                                capacity=capacities or None, report=report_def, trend=not no_trend)
    finally:
        close = getattr(store, "close", None)
        if close is not None:
            close()
    # the period as the user wrote it names the report (a financial quarter keeps its own label)
    report = {**report, "period": {**report["period"], "kind": chosen.kind, "label": chosen.label or report["period"]["label"]}}
    text = render(report, fmt, title=title)
    if out is not None:
        settings.write(out, text)
    else:
        click.echo(text, nl=False, color=settings.use_color())
