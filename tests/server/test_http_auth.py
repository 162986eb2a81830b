"""Who is asking comes from verified credentials only: each bad credential is refused with 401 or 403
and changes nothing; good ones act as the token's or key's actor with the mapped roles."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from server_harness import AUDIENCE, ISSUER, Api, ThreadServer, jwk_of, make_api, new_rsa_key, write_settings

from engine import Engine, FixedClock, bundled_config_dir, load_config
from engine.server import create_app, load_settings
from engine.store.sqlite import SQLiteStore

from server_harness import DAY0, FIXTURE  # isort: skip


def review(api: Api, reviewer: str = "R-01") -> str:
    return api.engine.start("review", {"case_id": "C-1", "reviewer": reviewer}, actor="QA-01", at=DAY0).id


def snapshot(api: Api) -> tuple[Any, ...]:
    """Everything a refused call must leave as it was."""
    views = api.engine.instances()
    return (
        [(v.id, v.state, v.rev, v.data) for v in views],
        [len(api.engine.history(v.id)) for v in views],
        len(api.engine.outbox(include_acknowledged=True)),
    )


def test_a_valid_token_acts_as_its_actor_with_the_mapped_roles(api, tokens):
    iid = review(api)
    with api.client(tokens("R-01", ["QA.Team", "Unmapped.Role"])) as http:
        me = http.get("/me").json()
        assert me == {"actor": "R-01", "roles": ["qa_team"], "via": "token", "name": ISSUER}
        fired = http.post(f"/instances/{iid}/triggers/note", json={"payload": {"text": "seen", "ok": True}})
    assert fired.status_code == 200, fired.text
    assert fired.json()["data"]["notes"] == ["seen"] and fired.json()["rev"] == 2
    last = api.engine.history(iid)[-1]
    assert (last["actor"], last["roles"]) == ("R-01", ["qa_team", "reviewer"])  # reviewer: bound through the data


def test_an_api_key_acts_as_its_service_account(api):
    iid = review(api)
    with api.client(key=api.api_key) as http:
        assert http.get("/me").json() == {"actor": "svc-case", "roles": ["manager"], "via": "api_key", "name": "case-system"}
        closed = http.post(f"/instances/{iid}/triggers/pause")
    assert closed.status_code == 200, closed.text
    assert closed.json()["deadlines"][0]["status"] == "paused"
    assert api.engine.history(iid)[-1]["actor"] == "svc-case"


def test_a_token_just_past_expiry_is_still_taken_within_the_leeway(api, tokens):
    iid = review(api)
    with api.client(tokens("R-01", lifetime=-30)) as http:  # leeway 60 s: clocks differ a little
        assert http.get(f"/instances/{iid}").status_code == 200


def _hs256_with_public_key(tokens: Any) -> str:
    """The classic key-confusion forgery: HS256 'signed' with the issuer's public key as the secret."""
    pem = tokens.keys.good.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "exp": now + 300, "oid": "R-01", "roles": ["Manager"]}
    import base64
    import hashlib
    import hmac

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode()) + "." + b64(json.dumps(body).encode())
    return head + "." + b64(hmac.new(pem, head.encode(), hashlib.sha256).digest())


def _tampered(tokens: Any) -> str:
    """A real token whose claims were edited after signing (roles raised to Manager)."""
    import base64

    head, _, sig = tokens("R-01", ["QA.Team"]).split(".")
    body = {"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 300, "oid": "R-01", "roles": ["Manager"]}
    forged = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    return f"{head}.{forged}.{sig}"


BAD_TOKENS = {
    "expired": (lambda t: t("M-01", ["Manager"], lifetime=-3600), "expired"),
    "not yet valid": (lambda t: t("M-01", ["Manager"], not_before=3600), "not valid yet"),
    "wrong issuer": (lambda t: t("M-01", ["Manager"], issuer="https://login.example.test/other-tenant/v2.0"), "another issuer"),
    "wrong audience": (lambda t: t("M-01", ["Manager"], audience="api://someone-else"), "another audience"),
    "forged signature": (lambda t: t("M-01", ["Manager"], key=t.keys.other), "signature does not verify"),
    "unpublished key": (lambda t: t("M-01", ["Manager"], key=t.keys.other, kid="k2"), "key the issuer does not publish"),
    "alg none": (lambda t: jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 300, "oid": "M-01",
                                       "roles": ["Manager"]}, None, algorithm="none"), "signed with 'none'"),
    "HS256 with the public key": (_hs256_with_public_key, "signed with 'HS256'"),
    "claims edited after signing": (_tampered, "signature does not verify"),
    "not a JWT": (lambda t: "not-a-token", "not a JWT"),
    "no actor claim": (lambda t: t(None, ["Manager"]), "no 'oid' claim"),
    "no expiry": (lambda t: jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "oid": "M-01", "roles": ["Manager"]}, t.keys.good,
                                       algorithm="RS256", headers={"kid": "k1"}), "lacks a required claim"),
}


@pytest.mark.parametrize("case", list(BAD_TOKENS))
def test_a_bad_token_is_refused_with_401_and_changes_nothing(api, tokens, case):
    iid = review(api)
    before = snapshot(api)
    make, words = BAD_TOKENS[case]
    with api.client(make(tokens)) as http:
        refused = [http.post(f"/instances/{iid}/triggers/pause"),
                   http.post("/instances", json={"workflow": "review", "data": {"case_id": "C-2", "reviewer": "R-02"}}),
                   http.get(f"/instances/{iid}")]
    for response in refused:
        assert response.status_code == 401, (case, response.text)
        assert response.json()["error"] == "Unauthenticated"
        assert words in response.json()["message"]
        assert response.headers["www-authenticate"].startswith('Bearer realm="qaflow"')
    assert snapshot(api) == before


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "qfk_not-a-key-this-server-knows"}, {"Authorization": "Basic dXNlcjpwYXNz"},
                                     {"Authorization": "Bearer qfk_sent-in-the-wrong-header"}], ids=["none", "unknown key", "basic", "key as bearer"])
def test_missing_or_unknown_credentials_are_refused_with_401(api, headers):
    iid = review(api)
    before = snapshot(api)
    with api.client(headers=headers) as http:
        for response in (http.post(f"/instances/{iid}/triggers/pause"), http.get(f"/instances/{iid}"), http.get("/me"),
                         http.post("/advance")):
            assert response.status_code == 401, response.text
            assert response.json()["error"] == "Unauthenticated"
    assert snapshot(api) == before


def test_a_token_and_a_key_together_are_refused(api, tokens):
    with api.client(tokens("M-01", ["Manager"]), key=api.api_key) as http:
        response = http.get("/me")
    assert response.status_code == 401 and "one credential" in response.json()["message"]


def test_a_token_with_the_wrong_role_is_refused_with_403_and_changes_nothing(api, tokens):
    iid = review(api)
    before = snapshot(api)
    with api.as_("QA-07", ["QA.Team"]) as http:  # pause needs manager
        response = http.post(f"/instances/{iid}/triggers/pause")
    assert response.status_code == 403
    assert response.json() == {"error": "RoleRefused", "message": f"QA-07 may not fire 'pause' on {iid}: it needs the role manager",
                               "instance": iid, "trigger": "pause"}
    assert snapshot(api) == before


def test_an_api_key_with_the_wrong_role_is_refused_with_403(api):
    iid = review(api)
    before = snapshot(api)
    with api.client(key=api.api_key) as http:  # the key holds manager; grade needs the bound reviewer
        response = http.post(f"/instances/{iid}/triggers/grade", json={"payload": {"grade": "good"}})
    assert response.status_code == 403 and response.json()["error"] == "RoleRefused"
    assert snapshot(api) == before


def test_naming_a_bound_role_or_system_in_a_token_gains_nothing(api, tokens):
    iid = review(api, reviewer="R-01")
    before = snapshot(api)
    with api.as_("R-99", ["reviewer", "system", "System"]) as http:  # unmapped token roles are dropped
        assert http.get("/me").json()["roles"] == []
        grade = http.post(f"/instances/{iid}/triggers/grade", json={"payload": {"grade": "good"}})
        signal = http.post(f"/instances/{iid}/triggers/child_done", json={"payload": {"result": "x"}})
        child = http.post("/instances", json={"workflow": "check", "data": {"case_id": "C-1"}})
    assert grade.status_code == 403 and grade.json()["error"] == "RoleRefused"
    assert signal.status_code == 409  # not available in state open; as the engine says, whoever asks
    assert child.status_code == 403 and child.json()["error"] == "RoleRefused"
    assert snapshot(api) == before


def test_a_token_whose_actor_is_the_engines_own_is_refused_with_403(api, tokens):
    iid = review(api)
    before = snapshot(api)
    for actor in ("system", "system:check-000001"):
        with api.as_(actor, ["Manager"]) as http:
            response = http.post(f"/instances/{iid}/triggers/pause")
        assert response.status_code == 403 and response.json()["error"] == "Forbidden", response.text
        assert "reserved for the engine" in response.json()["message"]
    assert snapshot(api) == before


@pytest.mark.parametrize("claim", [{"actor": "M-01"}, {"roles": ["manager"]}, {"actor": "M-01", "roles": ["manager"]}, {"user": "M-01"}])
def test_a_body_that_claims_who_is_asking_is_refused_with_403_and_changes_nothing(api, tokens, claim):
    iid = review(api)
    before = snapshot(api)
    with api.as_("QA-07", ["QA.Team"]) as http:
        fired = http.post(f"/instances/{iid}/triggers/pause", json={"payload": {}, **claim})
        started = http.post("/instances", json={"workflow": "review", "data": {"case_id": "C-2", "reviewer": "R-02"}, **claim})
    for response in (fired, started):
        assert response.status_code == 403, response.text
        body = response.json()
        assert body["error"] == "Forbidden" and "may not say who is asking" in body["message"]
        assert body["claimed"] == sorted(claim)
    assert snapshot(api) == before


@pytest.mark.parametrize("field", ["at", "backdate_reason"])
def test_a_body_that_dates_the_event_is_refused_with_400(api, tokens, field):
    iid = review(api)
    before = snapshot(api)
    with api.as_("R-01") as http:
        response = http.post(f"/instances/{iid}/triggers/note", json={"payload": {"text": "t", "ok": True}, field: "2026-01-01T09:00"})
    assert response.status_code == 400 and response.json()["error"] == "UsageError"
    assert "server's time" in response.json()["message"]
    assert snapshot(api) == before


def test_the_access_settings_limit_operations_to_roles(tmp_path, keys, tokens, api_key):
    live, app = make_api(tmp_path, keys, tokens, api_key, config=bundled_config_dir(), server={"advance_every_seconds": 0},
                         access={"report": ["qa_team"], "advance": ["manager"], "read": ["*"], "validate": ["qa_team"]})
    with ThreadServer(app) as server:
        live.url = server.url
        with live.as_("R-01", []) as reviewer, live.as_("QA-01", ["QA.Team"]) as qa, live.client(key=api_key[0]) as svc:
            refused = reviewer.get("/reports/2027-01")
            assert refused.status_code == 403 and refused.json() == {
                "error": "Forbidden", "message": "R-01 may not report here: it needs the role qa_team", "operation": "report"}
            assert qa.get("/reports/2027-01").status_code == 200
            assert qa.post("/advance").status_code == 403
            assert svc.post("/advance").status_code == 200
            assert reviewer.post("/validate").status_code == 403
            assert reviewer.get("/instances/nope").status_code == 404  # read: anyone authenticated
    live.engine.store.close()


# --------------------------------------------------------------------------- keys from a URL


class _JwksHandler(BaseHTTPRequestHandler):
    jwks: ClassVar[dict[str, Any]] = {"keys": []}
    hits: ClassVar[list[float]] = []

    def do_GET(self) -> None:
        type(self).hits.append(time.monotonic())
        body = json.dumps(type(self).jwks).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def jwks_server():
    handler = type("Handler", (_JwksHandler,), {"jwks": {"keys": []}, "hits": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield handler, f"http://127.0.0.1:{httpd.server_address[1]}/keys"
    httpd.shutdown()
    httpd.server_close()


def test_keys_come_from_the_jwks_url_and_a_rotated_key_is_fetched_once(tmp_path: Path, keys, tokens, jwks_server):
    handler, url = jwks_server
    handler.jwks = {"keys": [jwk_of(keys.good, "k1")]}
    path = write_settings(tmp_path / "server.toml", jwks_url=url, oidc={"jwks_refresh_seconds": 0.5},
                          server={"advance_every_seconds": 0})
    engine = Engine(load_config(FIXTURE), store=SQLiteStore(tmp_path / "q.db"), clock=FixedClock(DAY0))
    with ThreadServer(create_app(engine, load_settings(path, environ={}))) as server:
        assert len(handler.hits) == 1  # fetched at start
        import httpx

        def me(token: str) -> httpx.Response:
            return httpx.get(f"{server.url}/me", headers={"Authorization": f"Bearer {token}"})

        assert me(tokens("R-01")).status_code == 200
        rotated = new_rsa_key()
        handler.jwks = {"keys": [jwk_of(keys.good, "k1"), jwk_of(rotated, "k2")]}
        time.sleep(0.6)
        assert me(tokens("R-01", key=rotated, kid="k2")).status_code == 200  # unknown kid: fetched again
        assert len(handler.hits) == 2
        # made-up key ids do not make the server hammer the provider: at most one fetch per refresh interval
        made_up = [tokens("R-01", key=keys.other, kid=f"made-up-{n}") for n in range(20)]
        started = time.monotonic()
        for token in made_up:
            assert me(token).status_code == 401
        elapsed = time.monotonic() - started
        assert len(handler.hits) - 2 <= 1 + elapsed // 0.5 < 20
    engine.store.close()  # type: ignore[attr-defined]  # SQLiteStore.close


def test_a_token_verified_once_is_refused_once_it_expires(tmp_path, keys, tokens, api_key):
    live, app = make_api(tmp_path, keys, tokens, api_key, server={"advance_every_seconds": 0}, oidc={"leeway_seconds": 0})
    with ThreadServer(app) as server:
        live.url = server.url
        with live.client(tokens("R-01", lifetime=2)) as http:
            assert http.get("/me").status_code == 200  # verified, and remembered
            assert http.get("/me").status_code == 200
            time.sleep(3)
            expired = http.get("/me")
        assert expired.status_code == 401 and "expired" in expired.json()["message"]
    live.engine.store.close()  # type: ignore[attr-defined]  # SQLiteStore.close
