"""``qaflow simulate`` and ``qaflow allocate``: thin commands over engine.simulation and engine.allocation."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..errors import ConfigError, UsageError
from .app import Settings, _config_only, _store, common_options, main, pass_settings

SIM_FORMATS = ("text", "json", "csv", "html", "markdown")


# --------------------------------------------------------------------------- qaflow simulate


def _progress(settings: Settings, quiet: bool, total: int) -> tuple[Any, Callable[[int], None] | None]:
    if quiet or not sys.stderr.isatty() or total <= 0:
        return None, None
    bar = click.progressbar(length=total, label="simulating", file=sys.stderr, show_eta=True)
    bar.__enter__()
    return bar, bar.update


@main.command("simulate")
@click.option("--programme", "programmes", multiple=True, metavar="NAME|all",
              help="A service-area programme to simulate (its id, service or file name); repeat for several. Default: all.")
@click.option("--from", "start", default=None, metavar="DATE", help="First day of the period (default: the current quarter's).")
@click.option("--to", "end", default=None, metavar="DATE", help="Last day of the period (default: the end of --from's quarter).")
@click.option("--seed", type=int, default=1, show_default=True, help="The same seed gives the same output, byte for byte.")
@click.option("--scenario", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="An alternative behaviour model file (docs/simulation.md; 'extends: config' to change only some rules).")
@click.option("--format", "fmt", type=click.Choice(SIM_FORMATS), default=None,
              help="The report's format (from engine.reports): text, json, csv, html or markdown "
                   "(default: text, or json after 'qaflow --format json').")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write the report to this file.")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Processes to spread the authorities (or, with --runs, the runs) over; the results do not depend on it.")
@click.option("--compare", "compare", type=click.Path(file_okay=False, path_type=Path), default=None, metavar="OTHER_CONFIG",
              help="Also simulate another configuration folder on the same seed and population; show both side by side.")
@click.option("--runs", type=click.IntRange(1, 1000), default=1, show_default=True,
              help="With --compare: simulate both configurations this many times (seeds SEED, SEED/2, SEED/3...) and "
                   "show each difference as a mean with a 95%% interval, and whether it is more than noise.")
@click.option("--level", default="department", show_default=True, help="Split figures by department, service, team or practitioner.")
@click.option("--db", default=None, metavar="TARGET",
              help="Also write the simulated history into this store (a new SQLite file or an empty postgresql://... "
                   "database), for 'qaflow report', 'qaflow show' or 'qaflow impact' to read. One authority only.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.option("--color", type=click.Choice(["auto", "always", "never"]), default=None, expose_value=False,
              callback=_store("color"), help="Colour output (default: auto; NO_COLOR turns auto off).")
@_config_only
@pass_settings
def simulate_command(settings: Settings, programmes: tuple[str, ...], start: str | None, end: str | None, seed: int,
                     scenario: Path | None, fmt: str | None, out: Path | None, workers: int, compare: Path | None, runs: int,
                     level: str, db: str | None, quiet: bool) -> None:
    """Simulate a quarter of the QA programme on the real engine and print its report.

    People's behaviour (who does what, how fast, how often they disagree, how many complaints
    arrive...) comes from the behaviour model in <config>/simulation/ (or --scenario). Audits are
    selected on the 1st of each month from the programmes; every deadline, breach, moderation and
    escalation happens in the engine. Without --from/--to: the current quarter.

    --compare OTHER_CONFIG simulates both on the same random numbers (per case, arrival and instance),
    so only figures the change can reach differ; the comparison table lists them as B (OTHER_CONFIG)
    minus A (this configuration). With --runs N each difference is the mean of N paired runs with a
    95% interval, marked as beyond noise when the interval excludes 0; the report above it is run 1's.
    """
    from ..clock import SystemClock
    from ..simulation.api import as_date, quarter_of, run_simulation

    fmt = fmt or settings.format
    from ..simulation.model import load_model
    from ..simulation.report import render_simulation, simulation_report

    if scenario is not None and not scenario.is_file():
        raise UsageError(f"--scenario '{scenario}' does not exist")
    if compare is not None and not (compare / "workflows").is_dir():
        raise UsageError(f"--compare '{compare}' is not a configuration folder (it has no workflows/ folder)")
    if runs > 1 and compare is None:
        raise UsageError("--runs needs --compare OTHER_CONFIG: the runs measure the differences between two configurations")
    if start is None and end is None:
        # the only place qaflow reads the wall clock: to know which quarter is "now"
        first, last = quarter_of(SystemClock().now().date())
    elif end is None:
        first = as_date(start)
        last = quarter_of(first)[1]
    elif start is None:
        last = as_date(end)
        first = quarter_of(last)[0]
    else:
        first, last = as_date(start), as_date(end)
    chosen = None if not programmes or "all" in programmes else list(programmes)
    definitions = settings.definitions()
    model = load_model(definitions, settings.config_dir, scenario)
    from ..simulation.runner import simulation_window

    sim_start, stop = simulation_window(model, first, last)
    if compare is not None:  # checked before anything runs: a broken other configuration stops here
        from ..config.loader import check_config

        other_defs, problems = check_config(compare)
        if other_defs is None:
            raise ConfigError(problems)
        other_model_dir = compare if (compare / "simulation").is_dir() and scenario is None else settings.config_dir
        other_model = load_model(other_defs, other_model_dir, scenario)
        other_progs = compare if (compare / "programmes").is_dir() else settings.config_dir
    total = (stop.date() - sim_start).days * len(model.population.authorities)
    if compare is not None:
        other_start, other_stop = simulation_window(other_model, first, last)
        total = (total + (other_stop.date() - other_start).days * len(other_model.population.authorities)) * runs
    bar, tick = _progress(settings, quiet, total)
    result: Any = None
    try:
        comparison = None
        if compare is None:
            result = run_simulation(definitions, start=first, end=last, seed=seed, config_dir=settings.config_dir, model=model,
                                    programmes=chosen, workers=workers, progress=tick)
            report = simulation_report(result, definitions, level=level)
            title = f"Simulation of {result.model} (seed {seed})"
        else:
            from ..simulation.compare import Side, simulate_comparison

            both = simulate_comparison(Side(definitions, model, settings.config_dir, str(settings.config_dir)),
                                       Side(other_defs, other_model, other_progs, str(compare)),
                                       start=first, end=last, seed=seed, runs=runs, workers=workers, programmes=chosen,
                                       level=level, progress=tick, keep_first=db is not None)
            report, comparison, result = both.report_a, both.comparison, both.result_a
            title = f"Simulation: {settings.config_dir} against {compare} (seed {seed}" + (f", {runs} runs)" if runs > 1 else ")")
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    if db is not None and result is not None:
        _write_store(settings, result, definitions, db)
    text = render_simulation(report, fmt, title=title, comparison=comparison)
    if out is not None:
        settings.write(out, text)
    else:
        click.echo(text, nl=False, color=settings.use_color())


def _write_store(settings: Settings, result: Any, definitions: Any, db: str) -> None:
    """Write the simulated history into the store ``db`` names: new or empty, one authority's history.

    The recorded starts and fired triggers are replayed into it on the same configuration (engine.impact.replay),
    so that it holds exactly what the simulation's engine committed, written as the engine writes any store.
    """
    from ..impact.replay import read_history, replay
    from ..store.open import open_store

    stores = result.stores
    if len(stores) != 1:
        raise UsageError(f"--db holds one authority's history, and the behaviour model has {len(stores)}: "
                         "simulate one (a --scenario with one authority)")
    if db.startswith(("postgresql://", "postgres://")) or db == ":memory:":
        target: Any = open_store(db)
    else:
        from ..store.sqlite import SQLiteStore

        # a file made for trying things out: no fsync on every commit (NORMAL under WAL cannot corrupt it)
        target = SQLiteStore(db, synchronous="NORMAL")
    try:
        if next(iter(target.find()), None) is not None:
            raise UsageError(f"--db '{db}' already holds instances: write a simulation into a new store")
        replayed = replay(read_history(stores[0]), definitions, store=target)
    finally:
        close = getattr(target, "close", None)
        if close is not None:
            close()
    refused = sum(1 for o in replayed.outcomes if not o.ok)
    settings.note(f"wrote {len(replayed.outcomes)} recorded event(s) of the simulation into {db}"
                  + (f" ({refused} refused: the store does not reproduce the simulation)" if refused else ""))


# --------------------------------------------------------------------------- qaflow allocate


@main.command("allocate")
@click.option("--month", required=True, metavar="YYYY-MM", help="The month to select for (the selection runs on its 1st).")
@click.option("--cases", "cases_file", required=True, type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Open cases: a CSV (header line) or JSON file with case_id, team, team_manager, social_worker, opened_on, last_audited_on...")
@click.option("--pool", "pool_file", default=None, type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Peer auditors: CSV or JSON with person, role, team, manager, open_peer_audits, available "
                   "(default: the programmes' service managers).")
@click.option("--seed", type=int, default=None, help="Make the random selection repeatable.")
@click.option("--programme", "programmes", multiple=True, metavar="NAME",
              help="Only this programme's teams (id, service or file name); repeat for several. Default: all.")
@click.option("--db", default=None, metavar="TARGET",
              help="Also start the audits in this store (SQLite file or postgresql://...) at the selection time.")
@common_options
@pass_settings
def allocate_command(settings: Settings, month: str, cases_file: Path, pool_file: Path | None, seed: int | None,
                     programmes: tuple[str, ...], db: str | None) -> None:
    """Select this month's case file audits at random and allocate a lead and a peer auditor to each.

    The rules are config/rules/selection.yaml (eligibility, the 6-month exclusion, lead = the case's
    team manager, peer never the lead nor from the case's team, work spread evenly) and the sample
    sizes in config/programmes/. Prints the allocation and the reason for anything not allocated;
    with --db the audits are also started (each at most once: a second run starts nothing new).
    """
    from ..allocation import SelectionRules, allocate, load_programmes, pool_from_programmes, read_rows

    definitions = settings.definitions()
    rules = SelectionRules.from_definitions(definitions)
    progs, problems = load_programmes(settings.config_dir, list(programmes) or None)
    if any(p.severity == "error" for p in problems):
        raise ConfigError(problems)
    cases = read_rows(cases_file)
    pool = read_rows(pool_file) if pool_file is not None else pool_from_programmes(progs)
    engine = None
    open_load: dict[str, int] = {}
    last: dict[str, str] = {}
    if db is not None:
        try:
            from ..store.open import open_store
        except ImportError:  # pragma: no cover - the store opener ships with the package
            raise UsageError("--db needs engine.store.open, which this installation does not have") from None
        from ..runtime.engine import Engine

        engine = Engine(definitions, store=open_store(db))
        wf = definitions.workflow(rules.workflow)
        from ..allocation import selection_time

        this_run = selection_time(month, rules).date().isoformat()
        for inst in engine.store.find(rules.workflow):
            if inst.data.get("allocated_on") == this_run:
                continue  # this month's own audits (a second run): leave them out so the same seed selects the same
            if not wf.states[inst.state].terminal and isinstance(inst.data.get("peer_auditor"), str):
                open_load[inst.data["peer_auditor"]] = open_load.get(inst.data["peer_auditor"], 0) + 1
            case_id, on = inst.data.get("case_id"), inst.data.get("allocated_on")
            if isinstance(case_id, str) and isinstance(on, str) and on > last.get(case_id, ""):
                last[case_id] = on
    result = allocate(cases, pool, month=month, rules=rules, programmes=progs, seed=seed,
                      open_peer_audits=open_load, last_audited=last, calendar=definitions.calendars.get("england"),
                      only_programmes=bool(programmes))
    started: list[dict[str, str]] = []
    try:
        if engine is not None:
            for audit in result.audits:
                view = engine.start(rules.workflow, dict(audit.data), actor="qaflow-allocate", roles=["qa_team"],
                                    at=result.at, request_id=f"allocate:{month}:{audit.case_id}")
                started.append({"case_id": audit.case_id, "instance": view.id, "state": view.state})
    finally:
        close = getattr(engine.store, "close", None) if engine is not None else None
        if close is not None:
            close()
    if settings.json:
        out = result.to_dict()
        if engine is not None:
            out["started"] = started
        settings.emit_json(out)
        return
    when = result.at.strftime("%a %-d %b %Y %H:%M")
    settings.echo(settings.style(f"Selection for {month} ({when}): {len(result.audits)} audit(s) allocated, "
                                 f"{len(result.unallocated)} problem(s)", bold=True))
    width = max((len(a.case_id) for a in result.audits), default=8)
    for audit in result.audits:
        d = audit.data
        settings.echo(f"  {audit.case_id:<{width}}  {audit.team:<20} lead {d.get('lead_auditor', '?'):<12} "
                      f"peer {d.get('peer_auditor', '?')}" + (f" ({d['peer_team']})" if d.get("peer_team") else ""))
    if result.unallocated:
        settings.echo(settings.style("Not allocated:", fg="yellow", bold=True))
        for u in result.unallocated:
            settings.echo(settings.style(f"  {u.reason}", fg="yellow"))
    if result.peer_load:
        settings.echo("New peer audits per person: " + ", ".join(f"{p} {n}" for p, n in sorted(result.peer_load.items())))
    if engine is not None:
        settings.echo(f"Started {len(started)} audit(s) in {db}: " + ", ".join(s["instance"] for s in started))
