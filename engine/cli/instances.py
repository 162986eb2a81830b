"""Commands that run workflow instances in a store: start, fire, advance, held, show, list, worklist, outbox, instances, migrate."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import click

from ..errors import UsageError
from .app import Settings, common_options, main, pass_settings, printable


def _db_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--db",
        default=None,
        metavar="TARGET",
        help="Store: a SQLite file, postgresql://... or :memory: (default: $QAFLOW_DB or qaflow.db).",
    )(command)


def _at_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--at", default=None, metavar="TIME", help="When it happens, ISO 8601 (default: now, Europe/London)."
    )(command)


def _actor_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--actor, --role, --request-id, --at and --db: who does it, when, and where it is kept."""
    for option in (
        _db_option,
        _at_option,
        click.option("--request-id", default=None,
                     help="Names this call: a retry of it changes nothing and prints the first result; "
                          "another call with the same id is refused."),
        click.option("--role", "roles", multiple=True, help="A role the actor holds (repeatable)."),
        click.option("--actor", required=True, help="Who does it (a person's or system's id)."),
    ):
        command = option(command)
    return command


def _engine(settings: Settings, db: str | None, *, create: bool = False, readonly: bool = False) -> Any:
    """An engine on the store --db names; only ``start`` may make a new store, and commands that only
    read open it read-only (no migration, no write lock: a backup or a read-only file can be read)."""
    from ..clock import SystemClock
    from ..runtime.engine import Engine
    from ..store.open import open_store

    # the command line is where "now" may come from the wall clock, and only when --at is not given
    return Engine(settings.definitions(), store=open_store(db, create=create, readonly=readonly), clock=SystemClock())


MAX_JSON_BYTES = 16 * 1024 * 1024  # a --data or --payload file larger than this is surely a mistake


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON number")


def _json_arg(text: str | None, what: str) -> dict[str, Any]:
    """The JSON object of --data/--payload: written inline, '@FILE' to read a file, or '-' for stdin."""
    if text is None:
        return {}
    source = what
    if text == "-" or text.startswith("@"):
        source = "standard input" if text == "-" else text[1:]
        try:
            if text == "-":
                raw = sys.stdin.buffer.read(MAX_JSON_BYTES + 1)
            else:
                with open(text[1:], "rb") as handle:
                    raw = handle.read(MAX_JSON_BYTES + 1)
        except OSError as exc:
            raise UsageError(f"{what}: cannot read '{source}': {exc.strerror or exc}") from None
        if len(raw) > MAX_JSON_BYTES:
            raise UsageError(f"{what}: '{source}' is larger than {MAX_JSON_BYTES // (1024 * 1024)} MB")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise UsageError(f"{what}: '{source}' is not UTF-8 text (byte {exc.start + 1})") from None
    try:
        value = json.loads(text, parse_constant=_not_json)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{what} is not valid JSON: {exc.msg} at character {exc.pos + 1}") from None
    except RecursionError:
        raise UsageError(f"{what} is nested too deeply to read") from None
    except ValueError as exc:  # NaN/Infinity, or an integer with thousands of digits
        reason = "a number in it has thousands of digits" if "digits" in str(exc) else str(exc)
        raise UsageError(f"{what} cannot be read: {reason}") from None
    if not isinstance(value, dict):
        raise UsageError(f"{what} must be a JSON object, e.g. '{{\"key\": \"value\"}}'")
    return value


def _brief(view: Any) -> dict[str, Any]:
    return {"id": view.id, "state": view.state}


def _show(view: Any) -> dict[str, Any]:
    return {
        "id": view.id,
        "workflow": view.workflow,
        "version": view.version,
        "state": view.state,
        "data": view.data,
        "deadlines": [
            {"name": d.name, "due": d.due.isoformat(), "status": d.status, "late": d.late, "explanation": list(d.explanation)}
            for d in view.deadlines
        ],
        "parent": view.parent_id,
        "children": list(view.children),
        "history": [
            {"at": h["at"], "actor": h["actor"], "trigger": h["trigger"], "from": h["from"], "to": h["to"]}
            for h in view.history
        ],
    }


def _print_mapping(settings: Settings, value: dict[str, Any]) -> None:
    if settings.json:
        settings.emit_json(value)
    else:
        for key, item in value.items():
            settings.echo(f"{key}: {item}")


@main.command("start")
@click.argument("workflow")
@click.option("--data", default=None, metavar="JSON", help="The instance's data as a JSON object (@FILE reads a file, - reads stdin).")
@_actor_options
@common_options
@pass_settings
def start_command(settings: Settings, workflow: str, data: str | None, actor: str, roles: tuple[str, ...],
                  request_id: str | None, at: str | None, db: str | None) -> None:
    """Start an instance of WORKFLOW; prints its id and state."""
    eng = _engine(settings, db, create=True)
    view = eng.start(workflow, _json_arg(data, "--data"), actor=actor, roles=roles, at=at, request_id=request_id)
    _print_mapping(settings, _brief(view))


@main.command("fire")
@click.argument("instance")
@click.argument("trigger")
@click.option("--payload", default=None, metavar="JSON", help="The trigger's payload as a JSON object (@FILE reads a file, - reads stdin).")
@click.option("--backdate-reason", default=None, metavar="TEXT",
              help="Why the event is dated (--at) before the instance's last event; kept in the history.")
@_actor_options
@common_options
@pass_settings
def fire_command(settings: Settings, instance: str, trigger: str, payload: str | None, backdate_reason: str | None, actor: str,
                 roles: tuple[str, ...], request_id: str | None, at: str | None, db: str | None) -> None:
    """Fire TRIGGER on INSTANCE; prints the new state, or exits 1 with the reason and changes nothing."""
    eng = _engine(settings, db)
    view = eng.fire(instance, trigger, _json_arg(payload, "--payload"), actor=actor, roles=roles, at=at, request_id=request_id,
                    backdate_reason=backdate_reason)
    _print_mapping(settings, _brief(view))


@main.command("advance")
@click.option("--to", "to", default=None, metavar="TIME", help="Move the clock to TIME (default: now).")
@_db_option
@common_options
@pass_settings
def advance_command(settings: Settings, to: str | None, db: str | None) -> None:
    """Fire every deadline breach and scheduled start due up to TIME, in time order, each once."""
    eng = _engine(settings, db)
    fired = eng.advance(to if to is not None else eng.clock.now())
    if settings.json:
        settings.emit_json([o.to_dict() for o in fired])
        return
    for o in fired:
        what = {"breach": f"deadline {o.name} breached", "reminder": f"reminder {o.name} sent"}.get(o.kind, f"started {o.workflow}")
        move = f" ({o.from_state} -> {o.to_state})" if o.from_state and o.from_state != o.to_state else ""
        if o.set_aside:
            what = (f"deadline {o.name}" if o.kind == "breach" else f"scheduled start of {o.workflow}") + \
                " could not be fired: set aside (qaflow held)"
        error = settings.style(f"  error: {printable(o.error)}", fg="red") if o.error else ""
        settings.echo(f"{o.at.isoformat()}  {o.instance_id or '-'}  {what}{move}{error}")
    settings.note(f"{len(fired)} fired")


@main.command("held")
@click.option("--release", "releases", multiple=True, metavar="ID", help="Put a set-aside item back, to be tried by the next advance (repeatable).")
@click.option("--release-all", is_flag=True, help="Put every set-aside item back.")
@_db_option
@common_options
@pass_settings
def held_command(settings: Settings, releases: tuple[str, ...], release_all: bool, db: str | None) -> None:
    """List the deadlines and scheduled starts advance could not fire and set aside, with why.

    Fix the cause (usually the configuration: qaflow validate --db checks it against the store), then
    release them: the next advance fires them in time order.
    """
    eng = _engine(settings, db)
    items = eng.held()
    if releases or release_all:
        wanted = [h["id"] for h in items] if release_all else list(releases)
        unknown = [i for i in wanted if not eng.release(i)]
        if unknown:
            raise UsageError(f"nothing set aside as {', '.join(unknown)} (qaflow held lists what is)")
        settings.note(f"{len(wanted)} released")
        return
    if settings.json:
        settings.emit_json([{**h, "at": h["at"].isoformat()} for h in items])
        return
    for h in items:
        what = "deadline" if h["kind"] == "breach" else "scheduled start of"
        settings.echo(printable(f"{h['id']}  {what} {h['name']} due {h['at'].isoformat()}  set aside {h['held_at']}"))
        settings.echo("    " + printable(h["error"]))
    settings.note(f"{len(items)} set aside")


@main.command("show")
@click.argument("instance")
@_db_option
@common_options
@pass_settings
def show_command(settings: Settings, instance: str, db: str | None) -> None:
    """Show an instance: state, data, deadlines with their explanations, children and history."""
    view = _engine(settings, db, readonly=True).get(instance)
    shown = _show(view)
    if settings.json:
        settings.emit_json(shown)
        return
    settings.echo(f"{view.id}  {view.workflow} v{view.version}  state: {view.state}")
    settings.echo(f"data: {json.dumps(shown['data'], ensure_ascii=False)}")
    for d in view.deadlines:
        settings.echo(f"deadline {d.name}: {d.status}{' (late)' if d.late else ''}, due {d.due.isoformat()}")
        for line in d.explanation:
            settings.echo(f"    {line}")
    if view.children:
        settings.echo(f"children: {', '.join(view.children)}")
    for h in shown["history"]:
        settings.echo(printable(f"{h['at']}  {h['actor']}  {h['trigger']}  {h['from']} -> {h['to']}"))


def _where_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--where", "wheres", multiple=True, metavar="FIELD=VALUE",
        help="Only instances whose data FIELD is the text VALUE; FIELD:=JSON for a number, true, false, null, "
             "or a list meaning any of its values. Repeatable: every field given must match; the same field "
             "twice matches either value.",
    )(command)


def _page_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in (
        click.option("--after", default=None, metavar="CURSOR", help="The page after CURSOR: the 'next' the page before gave."),
        click.option("--due-before", default=None, metavar="TIME",
                     help="Only instances with a deadline still awaited (running, or breached and not met) due by TIME (ISO 8601)."),
    ):
        command = option(command)
    return _where_option(command)


def _where(values: tuple[str, ...]) -> dict[str, Any] | None:
    """The --where options as Engine.query's ``where``: FIELD=TEXT or FIELD:=JSON; one field twice is any of."""
    from ..runtime.query import where_from_text

    return where_from_text(values)


def _next_page(settings: Settings, cursor: str | None, shown: int, what: str) -> None:
    settings.note(f"{shown} {what}" + (f"; more with --after {cursor}" if cursor else ""))


@main.command("list")
@click.option("--workflow", default=None, help="Only instances of this workflow.")
@click.option("--state", default=None, help="Only instances in this state.")
@_page_options
@click.option("--limit", type=click.IntRange(1, 1000), default=None,
              help="Show one page of at most N instances (in id order); the cursor for the next page is printed on stderr, "
                   "or given as 'next' with --format json.")
@_db_option
@common_options
@pass_settings
def list_command(settings: Settings, workflow: str | None, state: str | None, wheres: tuple[str, ...], due_before: str | None,
                 after: str | None, limit: int | None, db: str | None) -> None:
    """List instances, every one or a page at a time (--limit, --after)."""
    eng = _engine(settings, db, readonly=True)
    where = _where(wheres)
    paged = limit is not None or after is not None
    cursor = None
    if paged:
        page = eng.query(workflow, state, where=where, due_before=due_before, limit=limit or 50, after=after)
        views, cursor = list(page.items), page.next
    elif where is not None or due_before is not None:
        views, page_after = [], None
        while True:  # every match, read a page at a time
            page = eng.query(workflow, state, where=where, due_before=due_before, limit=1000, after=page_after)
            views += page.items
            if page.next is None:
                break
            page_after = page.next
    else:
        views = eng.instances(workflow=workflow, state=state)
    rows = [{"id": v.id, "workflow": v.workflow, "version": v.version, "state": v.state, "updated_at": v.updated_at.isoformat()} for v in views]
    if settings.json:
        settings.emit_json({"items": rows, "next": cursor} if paged else rows)
        return
    for r in rows:
        settings.echo(f"{r['id']}  {r['workflow']} v{r['version']}  {r['state']}  {r['updated_at']}")
    if paged:
        _next_page(settings, cursor, len(rows), "instances")


@main.command("worklist")
@click.option("--actor", required=True, help="Whose worklist: a person's or system's id.")
@click.option("--role", "roles", multiple=True, help="A role the actor holds (repeatable).")
@click.option("--workflow", default=None, help="Only instances of this workflow.")
@click.option("--state", default=None, help="Only instances in this state.")
@_page_options
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True, help="At most N instances on the page.")
@_db_option
@common_options
@pass_settings
def worklist_command(settings: Settings, actor: str, roles: tuple[str, ...], workflow: str | None, state: str | None,
                     wheres: tuple[str, ...], due_before: str | None, after: str | None, limit: int, db: str | None) -> None:
    """What ACTOR may fire now: one line per instance, with its triggers and its next deadline.

    A page at a time, in instance id order: the cursor for the next page is printed on stderr (with
    --format json: {"items": [...], "next": CURSOR}). A page may be short while more follow.
    """
    eng = _engine(settings, db, readonly=True)
    page = eng.worklist(actor, roles, workflow=workflow, state=state, where=_where(wheres), due_before=due_before,
                        limit=limit, after=after)
    if settings.json:
        settings.emit_json({"items": [item.to_dict() for item in page], "next": page.next})
        return
    for item in page:
        due = f"  due {item.due.isoformat()} ({item.deadline})" if item.due is not None else ""
        settings.echo(printable(f"{item.instance_id}  {item.workflow}  {item.state}  {', '.join(name for name, _ in item.triggers)}{due}"))
    _next_page(settings, page.next, len(page), "instances with something to fire")


@main.command("outbox")
@click.option("--ack", "acks", multiple=True, metavar="ALERT_ID", help="Acknowledge an alert as delivered (repeatable).")
@click.option("--all", "show_all", is_flag=True, help="Include acknowledged alerts.")
@click.option("--claim", type=click.IntRange(1, 1000), default=None, metavar="N",
              help="Lease up to N alerts to --worker and print them: no other claim gets them while the lease runs.")
@click.option("--worker", default=None, help="Who delivers: the claimant of --claim, recorded with --ack.")
@click.option("--lease", "lease", type=click.FloatRange(0, min_open=True), default=60.0, show_default=True, metavar="SECONDS",
              help="How long a claim holds, by the store's clock; unacknowledged alerts can be claimed again after it.")
@_db_option
@common_options
@pass_settings
def outbox_command(settings: Settings, acks: tuple[str, ...], show_all: bool, claim: int | None, worker: str | None, lease: float,
                   db: str | None) -> None:
    """List alerts waiting for delivery; they stay until acknowledged (at-least-once delivery).

    Several deliverers share the outbox with leases: each runs  qaflow outbox --claim 10 --worker NAME,
    delivers what it printed, and acknowledges each alert with  qaflow outbox --ack ID --worker NAME.
    An alert not acknowledged before its lease ends is claimed again.
    """
    if claim is not None and acks:
        raise UsageError("--claim and --ack go in separate calls: claim, deliver, then acknowledge")
    if claim is not None and worker is None:
        raise UsageError("--claim needs --worker: the name the lease is held under")
    eng = _engine(settings, db, readonly=not acks and claim is None)
    for alert_id in acks:
        eng.acknowledge(alert_id, worker=worker)
    if acks:
        settings.note(f"{len(acks)} acknowledged")
        return
    if claim is not None:
        assert worker is not None
        alerts = eng.claim_alerts(worker, limit=claim, lease_seconds=lease)
    else:
        alerts = eng.outbox(include_acknowledged=show_all)
    if settings.json:
        settings.emit_json(alerts)
        return
    for a in alerts:
        to = ", ".join(r.get("person") or r.get("role", "?") for r in a["recipients"])
        done = "  [acknowledged]" if a["acknowledged_at"] else ""
        lease_note = f"  [leased to {a['lease']['worker']} until {a['lease']['until']}, claim {a['lease']['claims']}]" if "lease" in a else ""
        settings.echo(printable(f"{a['id']}  {a['at']}  {a['name']} -> {to}{done}{lease_note}") + "\n    " + printable(a["message"]))
    if claim is not None:
        settings.note(f"{len(alerts)} claimed by {worker}")


@main.command("instances")
@click.option("--outdated", is_flag=True, required=True, help="Unfinished instances on an older definition version.")
@_db_option
@common_options
@pass_settings
def instances_command(settings: Settings, outdated: bool, db: str | None) -> None:
    """List instances running on an older version of their workflow than the configuration's."""
    eng = _engine(settings, db, readonly=True)
    rows = [
        {"id": v.id, "workflow": v.workflow, "version": v.version, "current_version": eng.definitions.workflows[v.workflow].version, "state": v.state}
        for v in eng.outdated()
    ]
    if settings.json:
        settings.emit_json(rows)
        return
    for r in rows:
        settings.echo(f"{r['id']}  {r['workflow']}  v{r['version']} (current v{r['current_version']})  {r['state']}")
    settings.note(f"{len(rows)} outdated")


@main.command("migrate")
@click.argument("instances", nargs=-1, required=True)
@click.option("--apply", "apply_", is_flag=True, help="Apply the migration (without it: a dry run that changes nothing).")
@click.option("--actor", required=True, help="Who migrates.")
@_at_option
@_db_option
@common_options
@pass_settings
def migrate_command(settings: Settings, instances: tuple[str, ...], apply_: bool, actor: str, at: str | None, db: str | None) -> None:
    """Move INSTANCES to the configuration's version of their workflow; dry run first, --apply to do it.

    Refused for an instance whose current state, or a running deadline, no longer exists.
    """
    eng = _engine(settings, db)
    plans = [eng.migrate(i, actor=actor, at=at, dry_run=not apply_) for i in instances]
    if settings.json:
        settings.emit_json(plans)
    else:
        for p in plans:
            verdict = "migrated" if p["applied"] else ("would migrate" if p["ok"] else "refused")
            reasons = f": {'; '.join(p['problems'])}" if p["problems"] else ""
            settings.echo(f"{p['id']}  v{p['from_version']} -> v{p['to_version']}  {verdict}{reasons}")
    if not all(p["ok"] for p in plans):
        raise click.exceptions.Exit(1)
