"""``qaflow kpi``: import KPI figures from a performance extract, list what is stored, and the KPIs defined."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..errors import UsageError
from .app import Settings, common_options, main, pass_settings, printable

MAX_REPLACED_SHOWN = 20


@main.group("kpi")
@common_options
def kpi_group() -> None:
    """KPI figures from outside qaflow: import them, list them, see which KPIs are defined.

    \b
    Examples:
      qaflow kpi import docs/examples/kpi_extract.csv --db qaflow.db
      qaflow kpi list --kpi assessments_within_45_working_days --period FY2026/27-Q3
      qaflow kpi definitions
      qaflow kpi check --at 2027-01-05T09:00
    """


def _db_option(command: Any) -> Any:
    return click.option("--db", default=None, metavar="TARGET",
                        help="Store: a SQLite file or postgresql://... (default: $QAFLOW_DB or qaflow.db).")(command)


@kpi_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check the file and say what would be stored and replaced; store nothing.")
@click.option("--at", default=None, metavar="TIME", help="When the import happens, ISO 8601 (default: now, Europe/London).")
@click.option("--no-check", is_flag=True, help="Store the figures without applying the indicator rules to them (qaflow kpi check does later).")
@_db_option
@common_options
@pass_settings
def import_command(settings: Settings, file: Path, dry_run: bool, at: str | None, no_check: bool, db: str | None) -> None:
    """Store the KPI figures of FILE, a CSV or JSON performance extract (docs/kpis.md).

    Columns: kpi, period (2026-10, FY2026/27-Q3, CY2026-Q3, FY2026/27, or a range), level
    (department, service, team, ...), level_id, numerator, denominator, value, england,
    statistical_neighbours, region, benchmark_period, source, note. Every row is checked first; a
    file with any problem is refused whole, each problem named by row and column, and nothing is
    stored (exit 1). A figure for a KPI, level and period already stored is replaced, and said so.

    Then the indicator rules (config/rules/kpis.yaml, indicator_rules) read the KPIs just stored: a
    programme KPI red for 2 consecutive months, say, alerts the service manager and proposes a thematic
    audit (qaflow kpi check). A run of months proposes once, however often it is imported.
    """
    from ..clock import as_time
    from ..kpis.importer import import_kpi_file
    from ..store.open import display_target, open_store

    definitions = settings.definitions()
    when = as_time(at) if at is not None else None
    try:
        store: Any = open_store(db, readonly=dry_run)
    except UsageError:
        if not dry_run:
            raise
        from ..store.memory import MemoryStore

        store = MemoryStore()  # a dry run against a store not made yet: every figure would be new
    watch = None
    try:
        result = import_kpi_file(store, definitions, file, at=when, dry_run=dry_run)
        if not dry_run and not no_check:
            from ..clock import SystemClock
            from ..kpis.watch import check_indicators
            from ..runtime.engine import Engine

            engine = Engine(definitions, store=store, clock=SystemClock())
            watch = check_indicators(engine, at=when, kpis={v.kpi for v in result.stored})
    finally:
        getattr(store, "close", lambda: None)()
    if settings.json:
        settings.emit_json({**result.to_dict(), "store": display_target(db), **({"indicators": watch.to_dict()} if watch else {})})
        return
    settings.echo(f"{printable(result.summary())} ({'checked against' if dry_run else 'in'} {display_target(db)})")
    if watch is not None:
        _print_watch(settings, watch)
    lines = result.replacements()
    if lines:
        settings.echo("replaced:" if not dry_run else "would replace:")
        for line in lines[:MAX_REPLACED_SHOWN]:
            settings.echo(f"  {printable(line)}")
        if len(lines) > MAX_REPLACED_SHOWN:
            settings.echo(f"  ... and {len(lines) - MAX_REPLACED_SHOWN} more (--format json lists them all)")


def _print_watch(settings: Settings, watch: Any) -> None:
    settings.echo(printable(watch.summary()))
    for line in watch.lines():
        settings.echo(f"  {printable(line)}")


@kpi_group.command("check")
@click.option("--at", default=None, metavar="TIME", help="As things stand at TIME, ISO 8601 (default: now, Europe/London).")
@click.option("--kpi", "kpis", multiple=True, metavar="KPI", help="Only this KPI (repeatable).")
@_db_option
@common_options
@pass_settings
def check_command(settings: Settings, at: str | None, kpis: tuple[str, ...], db: str | None) -> None:
    """Apply the indicator rules to every programme KPI, imported or computed from workflow history.

    A rule (config/rules/kpis.yaml, indicator_rules) whose last months all match, such as red for 2
    consecutive months, alerts the service manager and proposes a thematic audit (state 'proposed'),
    its reason naming the indicator, the months and the figures; accepted, it joins the next programme
    month (qaflow programme start). Each run of months proposes once: running this again proposes
    nothing new. qaflow kpi import does the same for the KPIs it stores.
    """
    from ..clock import SystemClock
    from ..kpis.watch import check_indicators
    from ..runtime.engine import Engine
    from ..store.open import open_store

    engine = Engine(settings.definitions(), store=open_store(db), clock=SystemClock())
    try:
        watch = check_indicators(engine, at=at, kpis=set(kpis) if kpis else None)
    finally:
        getattr(engine.store, "close", lambda: None)()
    if settings.json:
        settings.emit_json(watch.to_dict())
        return
    _print_watch(settings, watch)


def _figure(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:g}" if isinstance(value, float) else str(value)


@kpi_group.command("list")
@click.option("--kpi", "kpi", default=None, metavar="KPI", help="Only this KPI.")
@click.option("--level", default=None, help="Only figures at this level (department, service, team, ...).")
@click.option("--level-id", default=None, help="Only figures for this service, team, ... id.")
@click.option("--period", default=None, metavar="PERIOD", help="Only figures for periods overlapping this one (2026-10, FY2026/27-Q3, ...).")
@_db_option
@common_options
@pass_settings
def list_command(settings: Settings, kpi: str | None, level: str | None, level_id: str | None, period: str | None, db: str | None) -> None:
    """List the KPI figures stored (imported), oldest period first within each KPI and level."""
    from ..periods import parse_period
    from ..store.open import open_store

    span = parse_period(period, bare_quarter=None) if period is not None else None
    store: Any = open_store(db, readonly=True)
    try:
        if not hasattr(store, "kpi_values"):
            raise UsageError(f"{type(store).__name__} keeps no KPI values")
        values = store.kpi_values(kpi, level=level, level_id=level_id, start=span.start if span else None, end=span.end if span else None)
    finally:
        store.close()
    values.sort(key=lambda v: (v.kpi, v.level, v.level_id, v.period_from, v.period_to))
    if settings.json:
        settings.emit_json([v.to_dict() for v in values])
        return
    if not values:
        settings.note("no KPI figures stored" + (" that match" if any((kpi, level, level_id, period)) else "") + "; qaflow kpi import FILE stores some")
        return
    headers = ("KPI", "Period", "Level", "Value", "Counted", "England", "Stat. neighbours", "Region", "Source", "Imported")
    rows = []
    for v in values:
        where = v.level if v.level == "department" else f"{v.level} {v.level_id}"
        counted = f"{_figure(v.numerator)} of {_figure(v.denominator)}" if v.denominator is not None else "-"
        rows.append((v.kpi, v.period, where, _figure(v.value), counted, _figure(v.england), _figure(v.statistical_neighbours),
                     _figure(v.region), v.source or "-", f"{v.imported_at[:10]} {v.imported_from}".strip()))
    widths = [max(len(str(r[i])) for r in (headers, *rows)) for i in range(len(headers))]
    for r in (headers, *rows):
        settings.echo(printable("  ".join(str(c).ljust(widths[i]) for i, c in enumerate(r)).rstrip()))


@kpi_group.command("definitions")
@common_options
@pass_settings
def definitions_command(settings: Settings) -> None:
    """The KPIs the configuration defines: computed from workflow history or imported, unit, target, benchmarks."""
    from ..kpis.catalogue import kpi_catalogue

    catalogue = kpi_catalogue(settings.definitions())
    if settings.json:
        settings.emit_json({k: spec.to_dict() for k, spec in catalogue.items()})
        return
    headers = ("KPI", "Figures", "Unit", "Target", "Tolerance", "Benchmarks", "Defined in")
    rows = []
    for k, spec in catalogue.items():
        target = "-" if spec.target is None else ("≤ " if spec.direction == "lower_is_better" else "≥ ") + _figure(spec.target)
        benchmarks = ", ".join(b.name + (f" {_figure(b.value)}" if b.value is not None else "") for b in spec.benchmarks) or "-"
        rows.append((k, "computed" if spec.values == "history" else "imported", spec.unit, target,
                     _figure(spec.tolerance), benchmarks, spec.defined_in))
    widths = [max(len(str(r[i])) for r in (headers, *rows)) for i in range(len(headers))]
    for r in (headers, *rows):
        settings.echo(printable("  ".join(str(c).ljust(widths[i]) for i, c in enumerate(r)).rstrip()))
