"""``qaflow programme start``: start a month's planned work of the service-area programmes, each item once."""

from __future__ import annotations

import click

from .app import Settings, common_options, main, pass_settings, printable


@main.group("programme")
@common_options
def programme_group() -> None:
    """The service-area QA programmes (config/programmes/): their planned work.

    \b
    Examples:
      qaflow programme start --month 2026-11 --db qaflow.db
    """


@programme_group.command("start")
@click.option("--month", required=True, metavar="YYYY-MM", help="The programme month whose planned work starts.")
@click.option("--at", default=None, metavar="TIME", help="When it starts, ISO 8601 (default: now, Europe/London).")
@click.option("--db", default=None, metavar="TARGET", help="Store: a SQLite file or postgresql://... (default: $QAFLOW_DB or qaflow.db).")
@common_options
@pass_settings
def start_command(settings: Settings, month: str, at: str | None, db: str | None) -> None:
    """Start the targeted audits every programme plans for MONTH, and join the proposed audits accepted before it.

    Each programme whose quarter holds the month starts, as the engine, its targeted_audits entries for
    that month (thematic and multi-agency audits); each proposed thematic audit its service manager
    accepted before the month joins it. Exactly once: running it again starts nothing more and says what
    was started before. Surveys are sent at their point in the child's journey, not by the month.
    """
    from ..clock import SystemClock
    from ..programmes import start_programme_month
    from ..runtime.engine import Engine
    from ..store.open import open_store

    engine = Engine(settings.definitions(), store=open_store(db), clock=SystemClock())
    try:
        result = start_programme_month(engine, month, at=at)
    finally:
        getattr(engine.store, "close", lambda: None)()
    if settings.json:
        settings.emit_json(result.to_dict())
    else:
        settings.echo(printable(result.summary()))
        for line in result.lines():
            settings.echo(f"  {printable(line)}")
    if result.failed:
        raise SystemExit(1)
