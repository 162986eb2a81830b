"""``qaflow serve``: the HTTP API; ``qaflow api-key`` and ``qaflow webhook-secret`` make its credentials."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from ..errors import UsageError
from .app import Settings, common_options, main, pass_settings


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--db", default=None, metavar="TARGET",
              help="Store: a SQLite file (one server process) or postgresql://... (several) (default: $QAFLOW_DB or qaflow.db).")
@click.option("--server-config", "server_config", default=None, metavar="FILE", type=click.Path(dir_okay=False, path_type=Path),
              help="The server's settings, TOML or YAML: [oidc], [[api_keys]], [access], [webhook], [server] "
                   "(default: $QAFLOW_SERVER_CONFIG). Required unless --insecure-dev.")
@click.option("--insecure-dev", is_flag=True,
              help="No authentication: every request acts as --dev-actor with --dev-role. Loopback addresses only; never in production.")
@click.option("--dev-actor", default="dev", show_default=True, help="The actor of every request with --insecure-dev.")
@click.option("--dev-role", "dev_roles", multiple=True, metavar="ROLE", help="A role of the --insecure-dev actor (repeatable; default: qa_team).")
@click.option("--advance-every", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
              help="Fire due deadlines and scheduled starts every SECONDS by the server's clock; 0: never "
                   "(then POST /advance from a scheduler) (default: [server] advance_every_seconds, else 60).")
@click.option("--no-webhooks", is_flag=True, help="Do not deliver the outbox from this server even if [webhook] is set.")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]), default="info", show_default=True)
@click.option("--no-access-log", is_flag=True, help="Do not log each request.")
@common_options
@pass_settings
def serve_command(settings: Settings, host: str, port: int, db: str | None, server_config: Path | None, insecure_dev: bool,
                  dev_actor: str, dev_roles: tuple[str, ...], advance_every: float | None, no_webhooks: bool, log_level: str,
                  no_access_log: bool) -> None:
    """Serve the HTTP API (OpenAPI at /docs) over the configuration and a store.

    Who is asking comes from OIDC bearer tokens or API keys as --server-config says, never from a
    request body; times are the server's clock. See the README, "For HTTP hosts".

    \b
    Examples:
      qaflow serve --insecure-dev                         # try it: bundled config, ./qaflow.db, 127.0.0.1:8000
      qaflow serve --server-config server.toml --db qaflow.db
      qaflow serve --server-config server.toml --db postgresql://qaflow@db/qaflow --host 0.0.0.0 --port 8001
    """
    from dataclasses import replace

    from ..runtime.inputs import check_actor, check_roles
    from ..server.run import missing_packages

    missing = missing_packages()
    if missing:
        raise UsageError(f"qaflow serve needs the server's packages ({', '.join(missing)} missing): pip install 'qaflow[server]'")
    from ..server.settings import DevIdentity, is_loopback, load_settings

    dev = None
    if insecure_dev:
        if not is_loopback(host):
            raise UsageError(f"--insecure-dev serves without authentication, so only on a loopback address, not {host}")
        roles = check_roles(dev_roles or ("qa_team",), check_actor(dev_actor))
        dev = DevIdentity(dev_actor, roles)
    path = server_config or (Path(os.environ["QAFLOW_SERVER_CONFIG"]) if os.environ.get("QAFLOW_SERVER_CONFIG") else None)
    server_settings = load_settings(path, dev=dev)
    if advance_every is not None:
        server_settings = replace(server_settings, advance_every_seconds=advance_every)
    if no_webhooks:
        server_settings = replace(server_settings, webhook=None)
    definitions = settings.definitions()  # a configuration with errors: every problem printed, exit 1

    from ..server.run import serve
    from ..store.open import display_target

    auth = []
    if dev is not None:
        auth.append(f"NONE (--insecure-dev: every request is {dev.actor} with {', '.join(sorted(dev.roles)) or 'no roles'})")
    if server_settings.oidc is not None:
        auth.append(f"bearer tokens from {server_settings.oidc.issuer}")
    if server_settings.api_keys:
        auth.append(f"{len(server_settings.api_keys)} API key(s)")
    settings.note(f"qaflow serve: http://{host}:{port} (API documentation at /docs), store {display_target(db)}, "
                  f"configuration {definitions.root}")
    settings.note(f"qaflow serve: authentication: {'; '.join(auth)}")
    if server_settings.webhook is not None:
        settings.note(f"qaflow serve: delivering the outbox to {server_settings.webhook.url}")
    serve(definitions, server_settings, db=db, host=host, port=port, log_level=log_level, access_log=not no_access_log)


@main.command("api-key")
@click.option("--name", required=True, help="What the key is for (shown in /me and the logs), e.g. case-system.")
@click.option("--actor", required=True, help="The actor the key acts as, recorded in the history, e.g. svc-case-system.")
@click.option("--role", "roles", multiple=True, help="A qaflow role the key holds (repeatable).")
@common_options
@pass_settings
def api_key_command(settings: Settings, name: str, actor: str, roles: tuple[str, ...]) -> None:
    """Make an API key for a service account: the key on stderr (give it to the service; it is not kept),
    and the [[api_keys]] entry with its sha256 on stdout (for the --server-config file).

    \b
    Example:
      qaflow api-key --name case-system --actor svc-case-system --role qa_team >> server.toml
    """
    from ..runtime.inputs import check_actor, check_roles
    from ..server.settings import new_api_key

    held = sorted(check_roles(roles, check_actor(actor)))
    key, digest = new_api_key()
    if settings.json:
        settings.emit_json({"key": key, "name": name, "actor": actor, "roles": held, "sha256": digest})
        return
    settings.note(f"API key for {name} (shown once; send it as the X-API-Key header):\n  {key}")
    click.echo(f"\n[[api_keys]]\nname = {json.dumps(name)}\nactor = {json.dumps(actor)}\n"
               f"roles = [{', '.join(json.dumps(r) for r in held)}]\nsha256 = \"{digest}\"")


@main.command("webhook-secret")
def webhook_secret_command() -> None:
    """Print a new signing secret for webhooks (whsec_ + base64, as Standard Webhooks libraries expect);
    give it to the receiver and to the server as QAFLOW_WEBHOOK_SECRET."""
    from ..server.settings import new_webhook_secret

    click.echo(new_webhook_secret())
