"""Commands for configuration editors: test, validate, init, schema, diagram, when, explain."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..errors import ConfigError, UsageError
from .app import EXIT_FINDINGS, EXIT_OK, Settings, _config_only, common_options, main, pass_settings, without_collection

# --------------------------------------------------------------------------- qaflow test


@main.command("test")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("-v", "--verbose", is_flag=True, help="List every scenario, passed or failed.")
@common_options
@pass_settings
def test_command(settings: Settings, paths: tuple[Path, ...], verbose: bool) -> None:
    """Run scenario tests (default: the configuration's scenarios/ folder).

    PATH may be a scenario file, a folder of them or a configuration folder. Prints each failure as
    FILE:LINE:COL, then which transitions, deadlines and breaches no scenario exercised, then
    'N passed, M failed'. Exit 0 if all pass, 1 otherwise.
    """
    from ..scenarios import coverage, load_scenarios, run_scenarios

    definitions = settings.definitions()
    scenarios, problems = load_scenarios(list(paths) if paths else settings.config_dir)
    if any(p.severity == "error" for p in problems):
        raise ConfigError(problems)
    settings.warn(problems)
    if not scenarios:
        settings.note("no scenarios found in " + (", ".join(map(str, paths)) if paths else f"{settings.config_dir}/scenarios"))
    results = run_scenarios(scenarios, definitions)
    report = coverage(results, definitions)
    passed = sum(1 for r in results if r.passed)
    failed = len(results) - passed

    if settings.json:
        settings.emit_json(
            {
                "passed": passed,
                "failed": failed,
                "failures": [f.to_dict() for r in results for f in r.failures],
                "coverage": report,
                "scenarios": [r.to_dict() for r in results],
            }
        )
    else:
        _print_results(settings, results, verbose)
        _print_coverage(settings, report)
        colour = "red" if failed else "green"
        settings.echo(settings.style(f"{passed} passed, {failed} failed", fg=colour, bold=True))
    click.get_current_context().exit(EXIT_FINDINGS if failed else EXIT_OK)


def _print_results(settings: Settings, results: list[Any], verbose: bool) -> None:
    for result in results:
        if verbose:
            mark = settings.style("PASS", fg="green") if result.passed else settings.style("FAIL", fg="red")
            settings.echo(f"{mark} {result.scenario.file}:{result.scenario.line} {result.scenario.name}")
        for failure in result.failures:
            settings.echo(settings.style(str(failure), fg="red"))


def _print_coverage(settings: Settings, report: dict[str, dict[str, Any]]) -> None:
    if not report:
        return
    settings.echo("coverage:")
    for workflow, cov in report.items():
        tr, dl = cov["transitions"], cov["deadlines"]
        parts = [f"{tr['exercised']}/{tr['total']} transitions"]
        if dl["total"]:
            parts.append(f"{dl['started']}/{dl['total']} deadlines started")
            parts.append(f"{dl['breached']}/{dl['total']} breached")
        if cov["reminders"]["total"]:
            parts.append(f"{cov['reminders']['sent']}/{cov['reminders']['total']} reminders sent")
        settings.echo(f"  {workflow}: " + ", ".join(parts))
        missing = cov["not_exercised"]
        where = {d["name"]: d["location"] for d in dl["items"]}
        for t in missing["transitions"]:
            settings.echo(settings.style(f"    not exercised: {t['location']}: transition {t['label']}", fg="yellow"))
        for name in missing["deadlines_not_started"]:
            settings.echo(settings.style(f"    not exercised: {where[name]}: deadline '{name}' never started", fg="yellow"))
        for name in missing["breaches"]:
            if name in missing["deadlines_not_started"]:
                continue  # already said
            settings.echo(settings.style(f"    not exercised: {where[name]}: deadline '{name}' never breached", fg="yellow"))
        for name in missing["reminders"]:
            deadline, _, reminder = name.partition("/")
            settings.echo(settings.style(f"    not exercised: {where[deadline]}: reminder '{reminder}' never sent", fg="yellow"))


# --------------------------------------------------------------------------- qaflow validate, schema, diagram, when, explain


@main.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--db", default=None, metavar="TARGET",
              help="Also check the configuration against the instances, schedules and stored versions running in "
                   "this store (a SQLite file or postgresql://...): what it would strand is an error.")
@common_options
@pass_settings
def validate_command(settings: Settings, paths: tuple[Path, ...], db: str | None) -> None:
    """Check configuration and report every problem, sorted by file, line and column.

    PATH is a configuration folder (default: --config) or a single file (its kind comes from its
    folder, workflows/ rules/ scenarios/ programmes/, or its content); a single file is checked
    together with the rest of its configuration. Each problem is printed as
    FILE:LINE:COL: error|warning: message [code]. Exit 0 if there are no errors, 1 otherwise.

    With --db, a configuration that is valid on its own is also checked against a running store:
    versions of workflows that running instances use and that no longer compile (a renamed
    timescale, say), workflows removed while instances or scheduled starts need them, and files
    changed without raising their version. Nothing in the store is changed.
    """
    from ..config.validate import validate_paths

    with without_collection():
        problems = validate_paths(list(paths), settings.config_dir, cache=True)
    if db is not None and not any(p.severity == "error" for p in problems):
        problems = sorted(problems + _against_store(settings, db), key=lambda p: p.sort_key())
    errors = sum(1 for p in problems if p.severity == "error")
    if settings.json:
        settings.emit_json({"ok": not errors, "problems": [p.to_dict() for p in problems]})
    else:
        for problem in problems:
            settings.echo(settings.style(str(problem), fg="red" if problem.severity == "error" else "yellow"))
        warnings = len(problems) - errors
        summary = f"{errors} error{'s' if errors != 1 else ''}, {warnings} warning{'s' if warnings != 1 else ''}"
        settings.note(summary if problems else "no problems found")
    click.get_current_context().exit(EXIT_FINDINGS if errors else EXIT_OK)


def _against_store(settings: Settings, db: str) -> list[Any]:
    from ..config.loader import check_config
    from ..runtime.preflight import check_against_store
    from ..store.open import display_target, open_store

    definitions, problems = check_config(settings.config_dir, cache=True)
    if definitions is None:
        return problems
    store = open_store(db, create=False)
    try:
        return check_against_store(definitions, store, label=display_target(db))
    finally:
        close = getattr(store, "close", None)
        if close is not None:
            close()


@main.command("init")
@click.argument("folder", required=False, type=click.Path(path_type=Path))
@common_options
@pass_settings
def init_command(settings: Settings, folder: Path | None) -> None:
    """Copy the bundled configuration into FOLDER (default: ./config), to make it your own.

    FOLDER must be new or empty. It gets the workflows, rules, programmes, scenarios, reports,
    simulation model and schemas, and a README that says how to add a service area. The copy is
    validated before the command ends. Then edit it and run 'qaflow --config FOLDER validate'
    (a folder ./config is found without --config).
    """
    from ..config.init import init_config
    from ..config.loader import display_path
    from ..config.validate import validate_paths

    target = folder if folder is not None else Path("config")
    written = init_config(target)
    problems = validate_paths([target])
    errors = [p for p in problems if p.severity == "error"]
    if settings.json:
        settings.emit_json({"folder": str(target), "files": len(written), "ok": not errors,
                            "problems": [p.to_dict() for p in problems]})
    else:
        for problem in problems:
            settings.echo(settings.style(str(problem), fg="red" if problem.severity == "error" else "yellow"))
        shown = display_path(target)
        settings.echo(f"copied the bundled configuration into {shown} ({len(written)} files, with README.md)")
        settings.echo("it validates: no errors" if not errors else f"{len(errors)} error(s) in the copy")
        hint = "" if target.resolve() == (Path.cwd() / "config").resolve() else f"--config {shown} "
        settings.echo(f"next: edit it, then 'qaflow {hint}validate' and 'qaflow {hint}test'")
    click.get_current_context().exit(EXIT_FINDINGS if errors else EXIT_OK)


@main.command("schema")
@click.argument("kind", required=False)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write every kind's schema, with the configuration's vocabularies, into this folder "
                   "(usually the configuration's own schemas/ folder).")
@common_options
@pass_settings
def schema_command(settings: Settings, kind: str | None, out: Path | None) -> None:
    """Print the JSON Schema (draft-07) of one kind of configuration file; list the kinds without KIND.

    The schemas are those of the configuration (--config): a list the rules define, such as the
    service areas (vocabulary 'services'), is the configuration's. 'qaflow schema --out
    config/schemas' writes them all, for editors; 'qaflow validate' warns when those files are out
    of date. Point your editor at them (see README, "Editor setup") for completion and red squiggles.
    """
    import difflib

    from ..config.configschemas import config_schema, schema_kinds, write_schemas
    from ..config.loader import display_path, vocabularies_of

    kinds = schema_kinds()
    vocabularies = vocabularies_of(settings.config_dir)
    if out is not None:
        if kind is not None:
            raise UsageError("give a KIND to print one schema, or --out DIR to write them all, not both")
        try:
            written = write_schemas(out, vocabularies)
        except OSError as exc:
            raise UsageError(f"cannot write schemas into '{out}': {exc.strerror or exc}") from None
        if settings.json:
            settings.emit_json({"folder": str(out), "written": [str(p) for p in written]})
            return
        for path in written:
            settings.echo(f"wrote {display_path(path)}")
        settings.note(f"{len(written)} schema(s) written, {len(kinds) - len(written)} already up to date in {display_path(out)}")
        return
    if kind is None:
        if settings.json:
            settings.emit_json({"kinds": sorted(kinds)})
        else:
            for name, path in kinds.items():
                settings.echo(f"{name}\t{path}")
        return
    if kind not in kinds:
        close = difflib.get_close_matches(kind, list(kinds), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise UsageError(f"no schema for '{kind}'; {hint}known: {', '.join(sorted(kinds))}")
    settings.emit_json(config_schema(kind, vocabularies))


@main.command("diagram")
@click.argument("workflow", required=False)
@click.option("--all", "all_", is_flag=True, help="Every workflow of the configuration (with --out).")
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid", show_default=True,
              help="Mermaid stateDiagram-v2 or Graphviz DOT.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write WORKFLOW.mmd / WORKFLOW.dot files into this folder instead of printing.")
@click.option("--detail", is_flag=True, help="Add each transition's condition to its label, in brackets.")
@_config_only
@pass_settings
def diagram_command(settings: Settings, workflow: str | None, all_: bool, fmt: str, out: Path | None,
                    detail: bool) -> None:
    """Draw a workflow's states and transitions (Mermaid by default, or Graphviz DOT).

    Every transition is one arrow from each state it leaves, labelled with the transition's title, else
    its trigger, 'auto' or 'breach: DEADLINE' (--detail adds the condition); deadlines are notes on the
    states that start them. In Mermaid, a state's transitions that stay in it go through a small choice
    point when there are several. 'qaflow diagram --all --out DIR' writes one file per workflow.
    """
    from ..diagram import FORMATS, render

    if all_ == (workflow is not None):
        raise UsageError("give a WORKFLOW, or --all (with --out DIR)")
    if all_ and out is None:
        raise UsageError("--all needs --out DIR: one diagram file is written per workflow")
    definitions = settings.definitions()
    chosen = sorted(definitions.workflows) if all_ else [definitions.workflow(workflow).id]
    if out is None:
        click.echo(render(definitions.workflows[chosen[0]], fmt, detail), nl=False)
        return
    for wid in chosen:
        settings.write(out / f"{wid}{FORMATS[fmt]}", render(definitions.workflows[wid], fmt, detail))


@main.command("when", context_settings={"ignore_unknown_options": True})  # so "-3 days" is read (and refused) as a duration
@click.argument("duration")
@click.option("--from", "start", required=True, metavar="DATE", help="The anchor date (day 0), YYYY-MM-DD.")
@click.option("--calendar", default="england", show_default=True, help="A calendar from the configuration's rules.")
@common_options
@pass_settings
def when_command(settings: Settings, duration: str, start: str, calendar: str) -> None:
    """Work out when DURATION after --from falls due, and explain how.

    DURATION is written as in a deadline's 'due:' ('10 working days', '3 weeks', '3 months',
    'end of week 4', '1st of next month', '..., next working day'; see docs/durations.md), or is
    the name of a timescale in the rules ('drp_stage').
    """
    from ..explain import explain_due, rules_from_config

    rules = rules_from_config(settings.config_dir)
    result = explain_due(duration, start, calendar, rules.calendars(), rules.timescales)
    if settings.json:
        settings.emit_json(result)
        return
    settings.echo(result["due"])
    for line in result["explanation"]:
        settings.echo(line)


@main.command("explain")
@click.argument("target", metavar="INSTANCE_OR_SCENARIO")
@click.option("--db", default=None, help="Store holding the instance: a SQLite file or postgresql://... (default: $QAFLOW_DB or qaflow.db).")
@click.option("--scenario", "scenario_name", default=None, help="Only the scenario with this name (for a scenario file).")
@common_options
@pass_settings
def explain_command(settings: Settings, target: str, db: str | None, scenario_name: str | None) -> None:
    """Explain in plain English why an instance is where it is, and how its deadlines were computed.

    INSTANCE_OR_SCENARIO is a scenario file (its scenarios are run and every instance they start is
    explained) or the id of an instance in the store (--db).
    """
    from ..explain import explain_instance, explain_scenarios, report_lines

    path = Path(target)
    if path.is_file() or path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise UsageError(f"scenario file '{target}' does not exist")
        reports, problems = explain_scenarios(path, settings.definitions(), name=scenario_name)
        if any(p.severity == "error" for p in problems):
            raise ConfigError(problems)
        settings.warn(problems)
        if settings.json:
            settings.emit_json({"scenarios": reports})
            return
        for report in reports:
            verdict = "passed" if report["passed"] else "FAILED"
            settings.echo(settings.style(f"Scenario '{report['scenario']}' ({report['file']}:{report['line']}): {verdict}", bold=True))
            for failure in report["failures"]:
                settings.echo(settings.style(f"  {failure}", fg="red"))
            for instance in report["instances"]:
                for line in report_lines(instance):
                    settings.echo(line)
            settings.echo()
        return
    from ..runtime.engine import Engine
    from ..store.open import open_store

    store = open_store(db, readonly=True)
    try:
        report = explain_instance(Engine(settings.definitions(), store=store), target)
    finally:
        close = getattr(store, "close", None)
        if close is not None:
            close()
    if settings.json:
        settings.emit_json(report)
    else:
        for line in report_lines(report):
            settings.echo(line)
