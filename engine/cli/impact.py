"""``qaflow impact``: what a changed configuration would have changed, replayed on the history in a store."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from ..errors import ConfigError, UsageError
from ..reports.period import PERIOD_HELP
from .app import Settings, common_options, main, pass_settings


@main.command("impact")
@click.option("--db", default=None, metavar="TARGET",
              help="The store whose history is replayed: a SQLite file or postgresql://... (default: $QAFLOW_DB or qaflow.db). "
                   "Opened read-only: nothing in it changes.")
@click.option("--current", type=click.Path(file_okay=False, path_type=Path), default=None, metavar="DIR",
              help="The configuration the store runs on now (default: ./config if it exists, else the bundled one).")
@click.option("--until", default=None, metavar="TIME",
              help="Advance the clock to this time at the end, so that deadlines due by then breach "
                   "(default: the latest entry in the store's history). Events after it are not replayed.")
@click.option("--period", default=None, metavar="PERIOD",
              help=f"The period of the KPIs compared: {PERIOD_HELP} (default: the whole history).")
@click.option("--html", "html_out", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE",
              help="Also write the report as one HTML page (both explanations of every deadline that moves).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE",
              help="Write the text (or JSON) to this file instead of standard output.")
@click.option("--fail-on-change", is_flag=True, help="Exit 1 when anything at all would have differed (for a check before a change).")
@common_options
@pass_settings
def impact_command(settings: Settings, db: str | None, current: Path | None, until: str | None, period: str | None,
                   html_out: Path | None, out: Path | None, fail_on_change: bool) -> None:
    """Replay the history in a store under a changed configuration (--config NEW) and report what would have differed.

    Every start and every fired trigger the store recorded is replayed, in time order, on two fresh
    in-memory engines: one with the current configuration (--current), one with the new one; deadlines
    breach and reminders go as each configuration says. Reported, in totals and instance by instance:
    deadlines whose due date moves (with both explanations) and those that would now be late, recorded
    events taken or refused differently, children (moderations, Inadequate reviews...) that would or
    would not start, alerts that would go to other people or at another time, and KPIs whose value or
    RAG status changes. The store is only read. It also says whether the replay under the current
    configuration gives back exactly what the store holds.

    \b
    Examples:
      qaflow impact --config config-new --db qa.db
      qaflow impact --config config-new --db qa.db --format json
      qaflow impact --config config-new --db qa.db --period 2026/27Q3 --html impact.html
    A simulated quarter to try a change on: qaflow simulate --from 2026-10-01 --db sim.db
    """
    from ..config.loader import check_config, default_config_dir
    from ..impact import impact, render_html, render_text
    from ..reports.period import parse_period
    from ..store.open import DEFAULT_PATH, open_store
    from ..store.urls import shown

    if settings.config is None:
        raise UsageError("give the changed configuration to try: qaflow impact --config NEW (the current one is --current, "
                         "default ./config or the bundled one)")
    chosen = parse_period(period) if period is not None else None
    new_defs = settings.definitions()
    current_dir = current if current is not None else default_config_dir()
    if not (current_dir / "workflows").is_dir():
        raise UsageError(f"--current '{current_dir}' is not a configuration folder (it has no workflows/ folder)")
    cur_defs, problems = check_config(current_dir, cache=True)
    if cur_defs is None:
        raise ConfigError(problems)
    store: Any = open_store(db, readonly=True)
    try:
        report = impact(store, cur_defs, new_defs, until=until, period=(chosen.start, chosen.end) if chosen else None,
                        store_label=shown(db or os.environ.get("QAFLOW_DB") or DEFAULT_PATH))
    finally:
        close = getattr(store, "close", None)
        if close is not None:
            close()
    report = _labelled(report, str(current_dir), str(settings.config))
    if html_out is not None:
        settings.write(html_out, render_html(report))
    if settings.json:
        import json

        text = json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"
    else:
        text = render_text(report)  # one line per line of the report: text from the store comes escaped
    if out is not None:
        settings.write(out, text)
    else:
        click.echo(text, nl=False, color=settings.use_color())
    if fail_on_change and report.changed:
        click.get_current_context().exit(1)


def _labelled(report: Any, current: str, new: str) -> Any:
    """The report naming the two configurations as the user gave them."""
    from dataclasses import replace

    return replace(report, current_config=current, new_config=new)
