"""Who is asking: an OIDC bearer token verified against the provider's keys, or an API key; never the body.

A token must be signed with an allowed public-key algorithm by a key in the JWKS, name the configured
issuer and audience, and be within its ``nbf``/``exp`` window (give or take the leeway). The actor is
one claim (``oid`` by default), the roles are another (``roles``) mapped through the settings'
role map: token roles that are not mapped give nothing. The reserved role ``system`` can never be
mapped, and an actor named ``system`` is refused. Roles bound to an instance (``lead_auditor``)
still come from the instance's data, as on every call the engine takes.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from ..errors import UsageError
from ..runtime.inputs import check_actor
from .errors import Forbidden, Unauthenticated
from .settings import OPERATIONS, ApiKey, OidcSettings, ServerSettings, find_api_key

log = logging.getLogger("qaflow.server")

#: How a refusal names an operation, where its [access] name does not read as a verb.
OPERATION_WORDS = {"outbox": "use the outbox"}


@dataclass(frozen=True)
class Identity:
    """The caller as the server established it: the actor and roles the engine is given."""

    actor: str
    roles: frozenset[str]
    via: str  # "token" | "api_key" | "dev"
    name: str = ""  # the API key's name, or the token's issuer

    def to_dict(self) -> dict[str, Any]:
        return {"actor": self.actor, "roles": sorted(self.roles), "via": self.via, "name": self.name}


class KeySet:
    """The provider's signing keys, from a file or a URL; fetched again for an unknown key id, at most
    once per ``jwks_refresh_seconds``, so that tokens with made-up key ids cannot hammer the provider."""

    def __init__(self, settings: OidcSettings) -> None:
        self.settings = settings
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()
        if settings.jwks_file:
            self._keys = self._parse(Path(settings.jwks_file).read_text(encoding="utf-8"), settings.jwks_file)
            self._fetched_at = float("inf")  # a file is read once, at start

    @staticmethod
    def _parse(text: str, source: str) -> dict[str | None, jwt.PyJWK]:
        try:
            keyset = jwt.PyJWKSet.from_dict(json.loads(text))
        except (ValueError, jwt.PyJWTError) as exc:
            raise UsageError(f"the JWKS from {source} cannot be read: {exc}") from None
        keys: dict[str | None, jwt.PyJWK] = {k.key_id: k for k in keyset.keys}
        if len(keyset.keys) == 1:
            keys.setdefault(None, keyset.keys[0])  # a token without a key id may use the only key
        return keys

    def find(self, kid: str | None) -> jwt.PyJWK | None:
        return self._keys.get(kid)

    def stale(self, kid: str | None) -> bool:
        """Whether a fetch is due before ``kid`` can be looked up (the async caller then fetches in a thread)."""
        age = time.monotonic() - self._fetched_at
        if age > self.settings.jwks_cache_seconds:
            return True
        return kid not in self._keys and age > self.settings.jwks_refresh_seconds

    def refresh(self, kid: str | None) -> None:
        if not self.settings.jwks_url:
            return
        with self._lock:
            if not self.stale(kid):
                return  # another thread fetched meanwhile
            import httpx

            try:
                response = httpx.get(self.settings.jwks_url, timeout=5.0, follow_redirects=False)
                response.raise_for_status()
                keys = self._parse(response.text, self.settings.jwks_url)
            except (httpx.HTTPError, UsageError) as exc:
                # keep the keys we have (a provider's hiccup must not log everyone out); try again later
                self._fetched_at = time.monotonic() - self.settings.jwks_cache_seconds + self.settings.jwks_refresh_seconds
                log.warning("qaflow serve: cannot fetch the JWKS from %s: %s", self.settings.jwks_url, exc)
                return
            self._keys = keys
            self._fetched_at = time.monotonic()


_CLAIM_ERRORS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "the token has expired"),
    (jwt.ImmatureSignatureError, "the token is not valid yet (nbf or iat in the future)"),
    (jwt.InvalidAudienceError, "the token is for another audience"),
    (jwt.InvalidIssuerError, "the token is from another issuer"),
    (jwt.MissingRequiredClaimError, "the token lacks a required claim"),
    (jwt.InvalidSignatureError, "the token's signature does not verify"),
    (jwt.InvalidAlgorithmError, "the token's algorithm does not match its key"),
)


class Authenticator:
    """Turns a request's credentials into an ``Identity``, or raises ``Unauthenticated`` / ``Forbidden``."""

    #: Tokens verified recently, so that a client's every request does not verify its token again
    #: (parsing and an RSA check cost about 0.2 ms): kept until the token expires, at most 5 minutes.
    CACHE_SIZE = 4096
    CACHE_SECONDS = 300.0

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.oidc = settings.oidc
        self.keys = KeySet(settings.oidc) if settings.oidc is not None else None
        self._verified: OrderedDict[str, tuple[float, Identity]] = OrderedDict()
        self._cache_lock = threading.Lock()

    # -- the two kinds of credential

    def fetch_due(self, token: str) -> bool:
        """Whether the provider's keys must be fetched (blocking) before ``token`` can be verified."""
        if self.keys is None or token in self._verified:
            return False
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError:
            return False  # verify says why
        return self.keys.stale(kid if isinstance(kid, str) else None)

    def fetch(self, token: str) -> None:
        """Fetch the provider's keys for ``token`` (from a thread: it blocks for up to 5 s)."""
        if self.keys is not None:
            kid = jwt.get_unverified_header(token).get("kid")
            self.keys.refresh(kid if isinstance(kid, str) else None)

    def verify(self, token: str) -> Identity:
        """The identity a token carries, if it verifies; from the cache when it verified lately and has not expired."""
        now = time.time()
        with self._cache_lock:
            cached = self._verified.get(token)
            if cached is not None:
                if cached[0] > now:
                    self._verified.move_to_end(token)
                    return cached[1]
                del self._verified[token]
        who, expires = self._verify(token)
        with self._cache_lock:
            self._verified[token] = (min(expires, now + self.CACHE_SECONDS), who)
            while len(self._verified) > self.CACHE_SIZE:
                self._verified.popitem(last=False)
        return who

    def _verify(self, token: str) -> tuple[Identity, float]:
        oidc, keys = self.oidc, self.keys
        if oidc is None or keys is None:
            raise Unauthenticated("this server takes API keys (X-API-Key), not bearer tokens", challenge="invalid_request")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("the bearer token is not a JWT", challenge="invalid_token") from None
        alg = header.get("alg")
        if alg not in oidc.algorithms:
            raise Unauthenticated(f"the token is signed with {alg!r}; this server accepts {', '.join(oidc.algorithms)}",
                                  challenge="invalid_token")
        kid = header.get("kid")
        key = keys.find(kid if isinstance(kid, str) else None)
        if key is None:
            raise Unauthenticated("the token is signed with a key the issuer does not publish", challenge="invalid_token")
        try:
            claims = jwt.decode(token, key, algorithms=list(oidc.algorithms), audience=list(oidc.audience), issuer=oidc.issuer,
                                leeway=oidc.leeway_seconds, options={"require": ["exp", "iss", "aud"]})
        except jwt.PyJWTError as exc:
            message = next((m for cls, m in _CLAIM_ERRORS if isinstance(exc, cls)), "the token cannot be verified")
            raise Unauthenticated(message, challenge="invalid_token") from None
        return self._identity(claims, oidc), float(claims["exp"]) + oidc.leeway_seconds

    def _identity(self, claims: Mapping[str, Any], oidc: OidcSettings) -> Identity:
        actor = _claim(claims, oidc.actor_claim)
        if not isinstance(actor, str) or not actor:
            raise Unauthenticated(f"the token has no '{oidc.actor_claim}' claim to name who is asking", challenge="invalid_token")
        try:
            check_actor(actor)
        except UsageError as exc:
            raise Forbidden(f"the token's '{oidc.actor_claim}' cannot act here: {exc.message}") from None
        given = _claim(claims, oidc.roles_claim)
        if isinstance(given, str):
            given = given.split()
        roles: set[str] = set()
        if isinstance(given, list):
            for name in given:
                if isinstance(name, str):
                    roles.update(oidc.role_map.get(name, ()))
        return Identity(actor, frozenset(roles), "token", oidc.issuer)

    def api_key(self, presented: str) -> Identity:
        key: ApiKey | None = find_api_key(self.settings.api_keys, presented) if self.settings.api_keys else None
        if key is None:
            raise Unauthenticated("the API key is not known to this server")
        return Identity(key.actor, key.roles, "api_key", key.name)

    # -- a request

    def identify(self, bearer: str | None, api_key: str | None) -> Identity:
        """The caller, from exactly one credential (blocking only to fetch the provider's keys)."""
        dev = self.settings.dev
        if dev is not None:
            return Identity(dev.actor, dev.roles, "dev", "insecure-dev")
        if bearer and api_key:
            raise Unauthenticated("send one credential: a bearer token or an API key, not both", challenge="invalid_request")
        if api_key:
            return self.api_key(api_key)
        if bearer:
            if bearer.startswith("qfk_"):
                raise Unauthenticated("API keys go in the X-API-Key header, not Authorization", challenge="invalid_request")
            if self.fetch_due(bearer):
                self.fetch(bearer)
            return self.verify(bearer)
        raise Unauthenticated("authentication needed: a bearer token (Authorization: Bearer ...) or an API key (X-API-Key)")

    def authorize(self, who: Identity, operation: str) -> None:
        """Refuse ``who`` an operation the settings' [access] limits to roles they do not hold."""
        assert operation in OPERATIONS, operation
        needed = self.settings.allowed_roles(operation)
        if needed is None or needed & who.roles:
            return
        doing = OPERATION_WORDS.get(operation, operation)
        if not needed:
            raise Forbidden(f"{who.actor} may not {doing} here: the server's [access] {operation} names no role that may",
                            operation=operation)
        raise Forbidden(f"{who.actor} may not {doing} here: it needs the role {' or '.join(sorted(needed))}", operation=operation)


def _claim(claims: Mapping[str, Any], path: str) -> Any:
    """A claim by name, or by a dotted path into nested claims (Keycloak: ``realm_access.roles``)."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value
