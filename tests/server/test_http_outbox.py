"""The outbox over a running server: GET /outbox, POST /outbox/claim under a lease, POST /outbox/{id}/ack; closed until
[access] outbox names a role, and the worker always the caller's own actor."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from server_harness import DAY0, Api, ThreadServer, make_api

from engine import QaflowError


def breaches(api: Api, count: int = 3) -> list[str]:
    """``count`` reviews whose response deadline has passed, each breach one alert in the outbox."""
    for k in range(count):
        api.engine.start("review", {"case_id": f"C-{k}", "reviewer": "R-01"}, actor="QA-01", at=DAY0)
    api.engine.advance("2027-01-20T09:00")
    return [a["id"] for a in api.engine.outbox()]


def outbox_state(api: Api) -> list[tuple[Any, ...]]:
    """Every alert and its acknowledgement."""
    return [(a["id"], a["acknowledged_at"], a["acknowledged_by"]) for a in api.engine.outbox(include_acknowledged=True)]


@pytest.fixture
def delivering(tmp_path, keys, tokens, api_key) -> Iterator[Api]:
    """A server whose [access] outbox is the role manager: the service key (svc-case) and M-01's token hold it."""
    live, app = make_api(tmp_path, keys, tokens, api_key, server={"advance_every_seconds": 0}, access={"outbox": ["manager"]})
    with ThreadServer(app) as server:
        live.url = server.url
        yield live
    live.engine.store.close()  # type: ignore[attr-defined]  # SQLiteStore.close


def test_claim_deliver_acknowledge(delivering):
    api = delivering
    ids = breaches(api)
    with api.client(key=api.api_key) as svc, api.as_("M-01", ["Manager"]) as manager:
        claimed = svc.post("/outbox/claim", json={"limit": 2, "lease_seconds": 60, "process": "mailer-1"})
        assert claimed.status_code == 200, claimed.text
        body = claimed.json()
        assert body["worker"] == "svc-case/mailer-1"
        assert [a["id"] for a in body["items"]] == ids[:2]
        lease = body["items"][0]["lease"]
        assert (lease["worker"], lease["claims"], lease["at"]) == ("svc-case/mailer-1", 1, "2027-01-04T09:00:00+00:00")
        assert body["items"][0]["message"] == api.engine.outbox()[0]["message"]
        # another caller gets only what no live lease holds
        theirs = manager.post("/outbox/claim").json()  # no body: 10 alerts, 60 s, process "default"
        assert theirs["worker"] == "M-01/default" and [a["id"] for a in theirs["items"]] == ids[2:]
        assert svc.post("/outbox/claim", json={"process": "mailer-2"}).json()["items"] == []
        # a lease hides an alert from claims, not from the list
        assert [a["id"] for a in svc.get("/outbox").json()["items"]] == ids
        for alert_id in ids[:2]:
            acked = svc.post(f"/outbox/{alert_id}/ack", json={"process": "mailer-1"})
            assert acked.status_code == 204 and acked.content == b""
        assert [a["id"] for a in svc.get("/outbox").json()["items"]] == ids[2:]
        everything = svc.get("/outbox", params={"include_acknowledged": "true"}).json()["items"]
        assert [(a["id"], a["acknowledged_by"]) for a in everything] == [(ids[0], "svc-case/mailer-1"), (ids[1], "svc-case/mailer-1"),
                                                                         (ids[2], None)]
        # acknowledging twice is harmless: the first stands
        assert manager.post(f"/outbox/{ids[0]}/ack").status_code == 204
        assert api.engine.outbox(include_acknowledged=True)[0]["acknowledged_by"] == "svc-case/mailer-1"


def test_an_alert_not_acknowledged_in_time_is_claimed_again(delivering):
    api = delivering
    (alert_id,) = breaches(api, 1)
    with api.client(key=api.api_key) as svc, api.as_("M-01", ["Manager"]) as manager:
        first = svc.post("/outbox/claim", json={"lease_seconds": 0.5}).json()["items"]
        assert [a["lease"]["claims"] for a in first] == [1]
        assert manager.post("/outbox/claim").json()["items"] == []  # the lease holds
        time.sleep(0.8)
        again = manager.post("/outbox/claim", json={"lease_seconds": 60}).json()["items"]
        assert [(a["id"], a["lease"]["worker"], a["lease"]["claims"]) for a in again] == [(alert_id, "M-01/default", 2)]
        # the first holder's late acknowledgement is still taken: the alert was delivered
        assert svc.post(f"/outbox/{alert_id}/ack").status_code == 204
        assert outbox_state(api) == [(alert_id, "2027-01-04T09:00:00+00:00", "svc-case/default")]
        time.sleep(0.1)
        assert manager.post("/outbox/claim").json()["items"] == []


def python_error(call: Any) -> dict[str, Any]:
    with pytest.raises(QaflowError) as info:
        call()
    return info.value.to_dict()


def test_acknowledging_an_alert_that_does_not_exist_is_404(delivering):
    api = delivering
    with api.client(key=api.api_key) as svc:
        response = svc.post("/outbox/alert-999999/ack")
    assert response.status_code == 404
    assert response.json() == {"error": "UnknownAlert", "message": "no alert 'alert-999999'", "alert": "alert-999999"}
    assert response.json() == python_error(lambda: api.engine.acknowledge("alert-999999", worker="w"))


@pytest.mark.parametrize(("body", "status", "words"), [
    ({"worker": "M-01/default"}, 403, "may not say who is asking ('worker')"),
    ({"actor": "M-01"}, 403, "may not say who is asking ('actor')"),
    ({"roles": ["manager"], "process": "x"}, 403, "may not say who is asking ('roles')"),
    ({"process": "M-01/default"}, 422, "body.process"),
    ({"process": "../x"}, 422, "body.process"),
    ({"process": "x" * 65}, 422, "body.process"),
    ({"limit": 0}, 422, "body.limit"),
    ({"limit": 1001}, 422, "body.limit"),
    ({"lease_seconds": 0}, 422, "body.lease_seconds"),
    ({"lease_seconds": 3601}, 422, "body.lease_seconds"),
    ({"lease_seconds": "long"}, 422, "body.lease_seconds"),
    ({"at": "2027-01-01T09:00"}, 400, "server's time"),
    ({"extra": 1}, 422, "body.extra"),
])
def test_a_claim_that_names_another_worker_or_is_malformed_is_refused_and_claims_nothing(delivering, body, status, words):
    api = delivering
    breaches(api, 2)
    with api.client(key=api.api_key) as svc:
        response = svc.post("/outbox/claim", json=body)
        assert response.status_code == status, response.text
        assert words in response.json()["message"], response.text
        if "process" in body or "worker" in body:
            acked = svc.post(f"/outbox/{api.engine.outbox()[0]['id']}/ack", json=body)
            assert acked.status_code == status, acked.text
    assert [a["lease"]["claims"] for a in api.engine.claim_alerts("check", limit=10)] == [1, 1]  # nothing was leased before
    assert all(a["acknowledged_at"] is None for a in api.engine.outbox())


@pytest.mark.parametrize("params", [{"worker": "M-01/default"}, {"actor": "M-01"}, {"roles": "manager"}])
def test_a_query_string_that_names_a_worker_is_refused(delivering, params):
    api = delivering
    breaches(api, 1)
    with api.client(key=api.api_key) as svc:
        for method, path in [("POST", "/outbox/claim"), ("GET", "/outbox"), ("POST", f"/outbox/{api.engine.outbox()[0]['id']}/ack")]:
            response = svc.request(method, path, params=params)
            assert response.status_code == 403 and response.json()["claimed"] == list(params), (path, response.text)
    assert api.engine.claim_alerts("check")[0]["lease"]["claims"] == 1
    assert api.engine.outbox()[0]["acknowledged_at"] is None


def test_the_list_takes_only_its_parameter(delivering):
    api = delivering
    with api.client(key=api.api_key) as svc:
        assert svc.get("/outbox", params={"include_acknowledged": "maybe"}).status_code == 422
        unknown = svc.get("/outbox", params={"all": "true"})
        assert unknown.status_code == 422 and "no query parameter 'all'" in unknown.json()["message"]


def test_callers_without_the_outbox_role_are_refused_and_nothing_changes(delivering):
    api = delivering
    ids = breaches(api, 2)
    before = outbox_state(api)
    with api.as_("R-01", ["QA.Team"]) as reviewer:
        for method, path, body in [("GET", "/outbox", None), ("POST", "/outbox/claim", {"limit": 5}),
                                   ("POST", f"/outbox/{ids[0]}/ack", None), ("POST", "/outbox/alert-999999/ack", None)]:
            response = reviewer.request(method, path, json=body)
            assert response.status_code == 403, (path, response.text)
            assert response.json() == {"error": "Forbidden", "operation": "outbox",
                                       "message": "R-01 may not use the outbox here: it needs the role manager"}
    assert outbox_state(api) == before
    assert [a["lease"]["claims"] for a in api.engine.claim_alerts("check", limit=10)] == [1, 1]


def test_the_outbox_is_closed_to_everyone_until_access_names_a_role(api):
    ids = breaches(api, 1)
    with api.client(key=api.api_key) as svc, api.as_("QA-01", ["QA.Team", "Manager"]) as qa:
        for http, actor in ((svc, "svc-case"), (qa, "QA-01")):
            for method, path in [("GET", "/outbox"), ("POST", "/outbox/claim"), ("POST", f"/outbox/{ids[0]}/ack")]:
                response = http.request(method, path)
                assert response.status_code == 403, response.text
                assert response.json()["message"] == (f"{actor} may not use the outbox here: the server's [access] outbox "
                                                       "names no role that may")
    assert api.engine.claim_alerts("check")[0]["lease"]["claims"] == 1
    assert json.loads(json.dumps(api.engine.outbox()))[0]["acknowledged_at"] is None
