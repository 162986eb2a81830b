"""The server's settings: who may call it (OIDC tokens, API keys), what each operation needs, webhooks, limits.

Read from a TOML or YAML file (``qaflow serve --server-config FILE`` or ``$QAFLOW_SERVER_CONFIG``),
with the OIDC values also settable by environment variables (``QAFLOW_OIDC_*``, which win over the
file) and the webhook secret only by ``$QAFLOW_WEBHOOK_SECRET`` or the file. Every problem is
collected and reported at once (``SettingsError``); a server with problems does not start.

This module needs nothing beyond the standard library and PyYAML, so that ``qaflow api-key`` works
without the server's packages installed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import os
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..runtime.inputs import check_actor, check_id
from .errors import SettingsError

#: Signature algorithms a token may use: public-key ones only. ``none`` is never accepted, nor HS*
#: (a shared secret; with a JWKS of public keys it is the classic key-confusion forgery).
ASYMMETRIC = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})
#: Roles no token or key can carry: the engine's own (it refuses them anyway).
RESERVED = frozenset({"system"})
#: Operations the server itself guards (start, fire and worklists are guarded by the workflows' own roles).
OPERATIONS = ("read", "report", "validate", "advance", "programme", "outbox")
#: Operations nobody may do until [access] names who may. Whoever claims or acknowledges an alert decides
#: whether and when it is delivered, and the outbox holds every alert's message: a delivering service's.
CLOSED_UNLESS_NAMED = frozenset({"outbox"})
ANYONE = "*"  # in [access]: any authenticated caller
API_KEY_PREFIX = "qfk_"


@dataclass(frozen=True)
class OidcSettings:
    """Bearer tokens from an OpenID Connect provider (Entra ID, Keycloak, ...), verified against its keys."""

    issuer: str
    audience: tuple[str, ...]
    jwks_url: str = ""
    jwks_file: str = ""
    roles_claim: str = "roles"  # Entra ID app roles; "groups" for group ids; a dotted path for nested claims
    actor_claim: str = "oid"  # Entra ID's object id: stable; "preferred_username" reads better in the history
    role_map: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # token role or group -> qaflow roles
    algorithms: tuple[str, ...] = ("RS256",)
    leeway_seconds: float = 60.0
    jwks_cache_seconds: float = 3600.0
    jwks_refresh_seconds: float = 60.0  # an unknown key id fetches the keys again at most this often


@dataclass(frozen=True)
class ApiKey:
    """A service account: whoever presents the key whose sha256 is ``sha256`` acts as ``actor`` with ``roles``."""

    name: str
    actor: str
    roles: frozenset[str]
    sha256: bytes


@dataclass(frozen=True)
class WebhookSettings:
    """Deliver the outbox: POST each alert to ``url``, signed, retried with exponential backoff.

    Each server claims the alerts it sends for ``lease_seconds`` (at least 3 x ``timeout_seconds``),
    so that several servers deliver one outbox without sending an alert twice while a lease holds.
    """

    url: str
    secret: bytes
    timeout_seconds: float = 10.0
    poll_seconds: float = 5.0
    backoff_seconds: float = 2.0
    max_backoff_seconds: float = 600.0
    lease_seconds: float = 60.0


@dataclass(frozen=True)
class DevIdentity:
    """``--insecure-dev``: every request is this actor with these roles. Loopback only."""

    actor: str
    roles: frozenset[str]


@dataclass(frozen=True)
class ServerSettings:
    oidc: OidcSettings | None = None
    api_keys: tuple[ApiKey, ...] = ()
    access: Mapping[str, frozenset[str]] = field(default_factory=dict)  # operation -> roles (see ``allowed_roles``)
    webhook: WebhookSettings | None = None
    dev: DevIdentity | None = None
    advance_every_seconds: float = 60.0  # 0: the server never advances the clock by itself
    max_body_bytes: int = 2_000_000
    threads: int = 40  # requests carried out at once; on PostgreSQL each thread holds a connection
    source: str = ""

    @property
    def authenticates(self) -> bool:
        return self.oidc is not None or bool(self.api_keys) or self.dev is not None

    def allowed_roles(self, operation: str) -> frozenset[str] | None:
        """The roles one of which ``operation`` needs, or None when any authenticated caller may.

        An operation [access] does not name is open to anyone, except those in CLOSED_UNLESS_NAMED,
        which are then closed to everyone; "*" among the roles opens an operation to anyone.
        """
        needed = self.access.get(operation)
        if needed is None:
            return frozenset() if operation in CLOSED_UNLESS_NAMED else None
        return None if ANYONE in needed else needed


# --------------------------------------------------------------------------- API keys


def hash_api_key(key: str) -> bytes:
    """sha256 of a key. Keys are 256 random bits, so a slow password hash would add cost and no safety."""
    return hashlib.sha256(key.encode("utf-8")).digest()


def new_api_key() -> tuple[str, str]:
    """A fresh key (shown once, to give to the service) and its sha256 in hex (for the settings file)."""
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    return key, hash_api_key(key).hex()


def find_api_key(keys: tuple[ApiKey, ...], presented: str) -> ApiKey | None:
    """The key whose hash matches, comparing with every key in constant time (no early exit)."""
    digest = hash_api_key(presented)
    found = None
    for key in keys:
        if hmac.compare_digest(digest, key.sha256):
            found = key
    return found


# --------------------------------------------------------------------------- reading


def read_settings_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The file's contents as plain data: TOML for ``.toml``, YAML otherwise."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(str(p), [f"cannot read it: {exc.strerror or exc}"]) from None
    try:
        if p.suffix == ".toml":
            data: Any = tomllib.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:  # tomllib.TOMLDecodeError, yaml.YAMLError
        raise SettingsError(str(p), [f"cannot be read as {'TOML' if p.suffix == '.toml' else 'YAML'}: {exc}"]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsError(str(p), ["the file must hold a table (TOML) or a mapping (YAML)"])
    return data


ENV_OIDC = {
    "QAFLOW_OIDC_ISSUER": "issuer",
    "QAFLOW_OIDC_AUDIENCE": "audience",
    "QAFLOW_OIDC_JWKS_URL": "jwks_url",
    "QAFLOW_OIDC_JWKS_FILE": "jwks_file",
    "QAFLOW_OIDC_ROLES_CLAIM": "roles_claim",
    "QAFLOW_OIDC_ACTOR_CLAIM": "actor_claim",
    "QAFLOW_OIDC_ALGORITHMS": "algorithms",
    "QAFLOW_OIDC_ROLE_MAP": "roles",
}


def load_settings(path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None, *,
                  dev: DevIdentity | None = None) -> ServerSettings:
    """Settings from ``path`` (TOML or YAML) and ``environ``; SettingsError lists every problem.

    The environment's ``QAFLOW_OIDC_*`` values win over the file's ``[oidc]``;
    ``QAFLOW_OIDC_ROLE_MAP`` is written ``TokenRole=qaflow_role,Other=role_a+role_b``.
    """
    env = os.environ if environ is None else environ
    data = read_settings_file(path) if path is not None else {}
    source = str(path) if path is not None else "environment"
    reader = _Reader()
    oidc_data = dict(data.get("oidc") or {}) if isinstance(data.get("oidc") or {}, dict) else reader.bad("[oidc] must be a table")
    for var, key in ENV_OIDC.items():
        if env.get(var):
            oidc_data[key] = _env_value(key, env[var], reader)
    known = {"oidc", "api_keys", "access", "webhook", "server"}
    for key in sorted(set(data) - known):
        reader.problems.append(f"unknown section '{key}' (known: {', '.join(sorted(known))})")
    oidc = reader.oidc(oidc_data) if oidc_data else None
    keys = reader.api_keys(data.get("api_keys") or [])
    access = reader.access(data.get("access") or {})
    webhook = reader.webhook(data.get("webhook"), env) if data.get("webhook") else None
    server = data.get("server") or {}
    if not isinstance(server, dict):
        reader.bad("[server] must be a table")
        server = {}
    for key in sorted(set(server) - {"advance_every_seconds", "max_body_bytes", "threads"}):
        reader.problems.append(f"[server] has an unknown key '{key}'")
    advance_every = reader.number(server, "advance_every_seconds", "[server]", 60.0, minimum=0.0)
    max_body = int(reader.number(server, "max_body_bytes", "[server]", 2_000_000, minimum=1024))
    threads = int(reader.number(server, "threads", "[server]", 40, minimum=1))
    settings = ServerSettings(oidc=oidc, api_keys=keys, access=access, webhook=webhook, dev=dev,
                              advance_every_seconds=advance_every, max_body_bytes=max_body, threads=threads, source=source)
    if not reader.problems and not settings.authenticates:
        reader.problems.append("no way to authenticate callers: configure [oidc] or [[api_keys]] "
                               "(or run `qaflow serve --insecure-dev` on your own machine)")
    if reader.problems:
        raise SettingsError(source, reader.problems)
    return settings


def _env_value(key: str, text: str, reader: _Reader) -> Any:
    if key in ("audience", "algorithms"):
        return [part.strip() for part in text.split(",") if part.strip()]
    if key == "roles":
        mapping: dict[str, list[str]] = {}
        for pair in filter(None, (p.strip() for p in text.split(","))):
            name, sep, roles = pair.partition("=")
            if not sep or not name.strip() or not roles.strip():
                reader.bad(f"QAFLOW_OIDC_ROLE_MAP: '{pair}' should be TokenRole=qaflow_role (or =role_a+role_b)")
                continue
            mapping[name.strip()] = [r.strip() for r in roles.split("+") if r.strip()]
        return mapping
    return text


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Reader:
    """Reads each section, collecting problems instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def bad(self, message: str) -> dict[str, Any]:
        self.problems.append(message)
        return {}

    def text(self, table: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
        value = table.get(key, default)
        if value is None:
            self.problems.append(f"{where} needs '{key}'")
            return ""
        if not isinstance(value, str) or not value.strip():
            self.problems.append(f"{where} '{key}' must be non-empty text")
            return ""
        return value.strip()

    def number(self, table: Mapping[str, Any], key: str, where: str, default: float, *, minimum: float) -> float:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
            self.problems.append(f"{where} '{key}' must be a number of at least {minimum:g}")
            return default
        return float(value)

    def names(self, value: Any, where: str) -> list[str]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            self.problems.append(f"{where} must be a role name or a list of them")
            return []
        return [v.strip() for v in value]

    def roles(self, value: Any, where: str) -> frozenset[str]:
        roles = frozenset(self.names(value, where))
        for role in sorted(roles):
            try:
                check_id(role, "a role")
            except UsageError as exc:
                self.problems.append(f"{where}: {exc.message}")
        if roles & RESERVED:
            self.problems.append(f"{where} names the role 'system', which only the engine holds: no token or key may carry it")
            return roles - RESERVED
        return roles

    def oidc(self, table: Mapping[str, Any]) -> OidcSettings | None:
        where = "[oidc]"
        allowed = {"issuer", "audience", "jwks_url", "jwks_file", "roles_claim", "actor_claim", "roles", "algorithms",
                   "leeway_seconds", "jwks_cache_seconds", "jwks_refresh_seconds"}
        for key in sorted(set(table) - allowed):
            self.problems.append(f"{where} has an unknown key '{key}' (known: {', '.join(sorted(allowed))})")
        issuer = self.text(table, "issuer", where)
        audience = self.names(table.get("audience"), f"{where} 'audience'") if table.get("audience") else []
        if not audience:
            self.problems.append(f"{where} needs 'audience': the API's application id (Entra ID: api://... or the client id)")
        jwks_url = str(table.get("jwks_url") or "")
        jwks_file = str(table.get("jwks_file") or "")
        if bool(jwks_url) == bool(jwks_file):
            self.problems.append(f"{where} needs one of 'jwks_url' (the provider's keys) or 'jwks_file' (a copy, for offline use)")
        if jwks_url and not jwks_url.startswith("https://") and not _local_http(jwks_url):
            self.problems.append(f"{where} 'jwks_url' must be https:// (plain http only to a loopback address)")
        if jwks_file and not Path(jwks_file).is_file():
            self.problems.append(f"{where} 'jwks_file' {jwks_file!r} does not exist")
        algorithms = tuple(self.names(table.get("algorithms", ["RS256"]), f"{where} 'algorithms'"))
        for alg in algorithms:
            if alg not in ASYMMETRIC:
                why = ("'none' means an unsigned token" if alg.lower() == "none" else
                       "HS* algorithms use a shared secret, and verifying one with a public key lets anyone forge tokens"
                       if alg.upper().startswith("HS") else "not a known signature algorithm")
                self.problems.append(f"{where} 'algorithms' may not include {alg!r}: {why} "
                                     f"(allowed: {', '.join(sorted(ASYMMETRIC))})")
        role_map: dict[str, tuple[str, ...]] = {}
        roles = table.get("roles") or {}
        if not isinstance(roles, dict):
            self.problems.append(f"{where} 'roles' must map token roles (or groups) to qaflow roles")
        else:
            for name, targets in roles.items():
                role_map[str(name)] = tuple(sorted(self.roles(targets, f"{where} roles.{name}")))
        return OidcSettings(
            issuer=issuer,
            audience=tuple(audience),
            jwks_url=jwks_url,
            jwks_file=jwks_file,
            roles_claim=self.text(table, "roles_claim", where, "roles"),
            actor_claim=self.text(table, "actor_claim", where, "oid"),
            role_map=role_map,
            algorithms=tuple(a for a in algorithms if a in ASYMMETRIC) or ("RS256",),
            leeway_seconds=self.number(table, "leeway_seconds", where, 60.0, minimum=0.0),
            jwks_cache_seconds=self.number(table, "jwks_cache_seconds", where, 3600.0, minimum=1.0),
            jwks_refresh_seconds=self.number(table, "jwks_refresh_seconds", where, 60.0, minimum=0.0),
        )

    def api_keys(self, items: Any) -> tuple[ApiKey, ...]:
        if not isinstance(items, list):
            self.problems.append("[[api_keys]] must be a list of tables")
            return ()
        keys: list[ApiKey] = []
        for n, item in enumerate(items, 1):
            where = f"[[api_keys]] #{n}"
            if not isinstance(item, dict):
                self.problems.append(f"{where} must be a table")
                continue
            for key in sorted(set(item) - {"name", "actor", "roles", "sha256"}):
                self.problems.append(f"{where} has an unknown key '{key}' (a key is kept as its sha256, never in clear)")
            name = self.text(item, "name", where)
            actor = self.text(item, "actor", where)
            if actor:
                try:
                    check_actor(actor)
                except UsageError as exc:
                    self.problems.append(f"{where}: {exc.message}")
            digest = str(item.get("sha256") or "")
            try:
                raw = bytes.fromhex(digest)
            except ValueError:
                raw = b""
            if len(raw) != 32:
                self.problems.append(f"{where} 'sha256' must be 64 hex digits (`qaflow api-key` makes a key and its hash)")
            keys.append(ApiKey(name=name or f"key {n}", actor=actor, roles=self.roles(item.get("roles", []), f"{where} roles"), sha256=raw))
        hashes = [k.sha256 for k in keys]
        if len(set(hashes)) != len(hashes):
            self.problems.append("[[api_keys]]: two entries have the same sha256")
        return tuple(keys)

    def access(self, table: Any) -> dict[str, frozenset[str]]:
        if not isinstance(table, dict):
            self.problems.append("[access] must be a table of operation = [roles]")
            return {}
        out: dict[str, frozenset[str]] = {}
        for op, roles in table.items():
            if op not in OPERATIONS:
                self.problems.append(f"[access] has an unknown operation '{op}' (known: {', '.join(OPERATIONS)}; "
                                     "start, fire and worklists are guarded by each workflow's own roles)")
                continue
            names = frozenset(self.names(roles, f"[access] {op}"))
            if ANYONE not in names or op in CLOSED_UNLESS_NAMED:  # "*" is the default of the others
                out[op] = names
        return out

    def webhook(self, table: Any, env: Mapping[str, str]) -> WebhookSettings | None:
        where = "[webhook]"
        if not isinstance(table, dict):
            self.problems.append(f"{where} must be a table")
            return None
        allowed = {"url", "secret", "timeout_seconds", "poll_seconds", "backoff_seconds", "max_backoff_seconds", "lease_seconds"}
        for key in sorted(set(table) - allowed):
            self.problems.append(f"{where} has an unknown key '{key}'")
        url = self.text(table, "url", where)
        if url and not (url.startswith("https://") or _local_http(url)):
            self.problems.append(f"{where} 'url' must be https:// (plain http only to a loopback address)")
        secret_text = env.get("QAFLOW_WEBHOOK_SECRET") or table.get("secret")
        secret = b""
        if not isinstance(secret_text, str) or not secret_text:
            self.problems.append(f"{where} needs a signing secret: set QAFLOW_WEBHOOK_SECRET (or 'secret' in the file)")
        else:
            secret = webhook_secret(secret_text, self.problems)
        backoff = self.number(table, "backoff_seconds", where, 2.0, minimum=0.001)
        timeout = self.number(table, "timeout_seconds", where, 10.0, minimum=0.1)
        # an attempt starts only while its lease has room for two timeouts (connecting, then the answer)
        lease = self.number(table, "lease_seconds", where, max(60.0, 3 * timeout), minimum=3 * timeout)
        return WebhookSettings(
            url=url,
            secret=secret,
            timeout_seconds=timeout,
            poll_seconds=self.number(table, "poll_seconds", where, 5.0, minimum=0.01),
            backoff_seconds=backoff,
            max_backoff_seconds=self.number(table, "max_backoff_seconds", where, 600.0, minimum=backoff),
            lease_seconds=lease,
        )


def webhook_secret(text: str, problems: list[str]) -> bytes:
    """A Standard Webhooks secret, ``whsec_`` + base64; other text is taken as its UTF-8 bytes (32 or more)."""
    if text.startswith("whsec_"):
        try:
            raw = base64.b64decode(text[len("whsec_"):], validate=True)
        except ValueError:
            problems.append("[webhook] the secret starts with whsec_ but the rest is not base64")
            return b""
    else:
        raw = text.encode("utf-8")
    if len(raw) < 24:
        problems.append("[webhook] the secret is too short: use 24 random bytes or more (whsec_ + base64, as `qaflow webhook-secret` prints)")
    return raw


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def _local_http(url: str) -> bool:
    if not url.startswith("http://"):
        return False
    host = url[len("http://"):].split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
    return is_loopback(host)
