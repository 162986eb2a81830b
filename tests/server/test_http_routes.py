"""The routes over a running server: what each returns, every engine error as its status with the same
message as the Python API, Idempotency-Key as request_id, limits, and the OpenAPI document."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from server_harness import DAY0, Api, ThreadServer, make_api

from engine import (
    ConcurrencyConflict,
    DataInvalid,
    EvaluationFailed,
    GuardFailed,
    OutOfOrder,
    PayloadInvalid,
    QaflowError,
    RequestIdReused,
    RoleRefused,
    StoreError,
    UnknownInstance,
    UnknownTrigger,
    UsageError,
    bundled_config_dir,
)


def review(api: Api, reviewer: str = "R-01", **data: Any) -> str:
    return api.engine.start("review", {"case_id": "C-1", "reviewer": reviewer, **data}, actor="QA-01", at=DAY0).id


def python_error(call: Any) -> dict[str, Any]:
    """What the Python API raises for the same call (a refused call changes nothing, so it can be asked twice)."""
    with pytest.raises(QaflowError) as info:
        call()
    return info.value.to_dict()


# --------------------------------------------------------------------------- the routes


def test_start_fire_show_history_explain_and_triggers(api):
    with api.as_("QA-01", ["QA.Team"]) as qa, api.as_("R-01") as reviewer:
        started = qa.post("/instances", json={"workflow": "review", "data": {"case_id": "C-7", "reviewer": "R-01"}})
        assert started.status_code == 201, started.text
        body = started.json()
        iid = body["id"]
        assert started.headers["location"] == f"/instances/{iid}"
        assert (body["workflow"], body["state"], body["rev"], body["terminal"]) == ("review", "open", 1, False)
        assert body["created_at"] == "2027-01-04T09:00:00+00:00"  # the server's clock
        (deadline,) = body["deadlines"]
        assert (deadline["name"], deadline["status"], deadline["due"]) == ("response", "open", "2027-01-18")
        assert deadline["explanation"]

        assert reviewer.get(f"/instances/{iid}/triggers").json() == {"instance": iid, "triggers": ["grade", "note"]}
        assert qa.get(f"/instances/{iid}/triggers").json()["triggers"] == []

        api.clock.set("2027-01-05T10:00")
        graded = reviewer.post(f"/instances/{iid}/triggers/grade", json={"payload": {"grade": "good"}})
        assert graded.status_code == 200, graded.text
        assert graded.json()["state"] == "closed" and graded.json()["rev"] == 2
        assert graded.json()["data"]["band"] == {"band": "green"}

        shown = qa.get(f"/instances/{iid}").json()
        assert shown == graded.json()
        assert shown == json.loads(json.dumps({**api.engine.get(iid).to_dict(history=False), "rev": 2}))

        history = qa.get(f"/instances/{iid}/history").json()
        assert history == api.engine.history(iid)
        assert [(h["trigger"], h["actor"], h["at"]) for h in history] == [
            ("(start)", "QA-01", "2027-01-04T09:00:00+00:00"), ("grade", "R-01", "2027-01-05T10:00:00+00:00"),
            ("(auto)", "system", "2027-01-05T10:00:00+00:00")]

        explained = qa.get(f"/instances/{iid}/explain").json()
        assert explained["instance"] == iid and explained["state"] == "closed"
        assert explained["events"][1]["text"].startswith("On ")
        assert explained["deadlines"][0]["name"] == "response"


def test_fire_without_a_body_and_with_an_empty_one(api, tokens):
    iid = review(api)
    with api.client(key=api.api_key) as http:
        assert http.post(f"/instances/{iid}/triggers/pause").status_code == 200
        assert http.post(f"/instances/{iid}/triggers/resume", json={}).status_code == 200
    assert [h["trigger"] for h in api.engine.history(iid)] == ["(start)", "pause", "resume"]


def test_advance_fires_what_is_due_by_the_servers_clock(api):
    ids = [review(api), review(api)]
    with api.client(key=api.api_key) as http:
        assert http.post("/advance").json() == {"to": "2027-01-04T09:00:00+00:00", "fired": []}
        api.clock.set("2027-01-20T09:00")
        fired = http.post("/advance").json()
        assert fired["to"] == "2027-01-20T09:00:00+00:00"
        assert [(o["instance"], o["kind"], o["name"], o["from"], o["to"]) for o in fired["fired"]] == [
            (iid, "breach", "response", "open", "escalated") for iid in ids]
        assert http.post("/advance").json()["fired"] == []  # each once
    assert len(api.engine.outbox()) == 2


# --------------------------------------------------------------------------- errors


def test_each_refusal_has_its_status_and_the_python_apis_message(api):
    iid = review(api)
    eng = api.engine
    cases = [
        # (client, method, path, body, status, the same call through the Python API)
        ("R-01", "POST", "/instances/review-999999/triggers/note", {"payload": {"text": "t", "ok": True}}, 404, UnknownInstance,
         lambda: eng.fire("review-999999", "note", {"text": "t", "ok": True}, actor="R-01")),
        ("R-01", "GET", "/instances/review-999999", None, 404, UnknownInstance, lambda: eng.get("review-999999")),
        ("R-01", "POST", f"/instances/{iid}/triggers/no_such", None, 409, UnknownTrigger,
         lambda: eng.fire(iid, "no_such", actor="R-01")),
        ("R-01", "POST", f"/instances/{iid}/triggers/child_done", {"payload": {"result": "x"}}, 409, UnknownTrigger,
         lambda: eng.fire(iid, "child_done", {"result": "x"}, actor="R-01")),
        ("R-02", "POST", f"/instances/{iid}/triggers/grade", {"payload": {"grade": "good"}}, 403, RoleRefused,
         lambda: eng.fire(iid, "grade", {"grade": "good"}, actor="R-02")),
        ("R-01", "POST", f"/instances/{iid}/triggers/grade", {"payload": {"grade": "great"}}, 422, PayloadInvalid,
         lambda: eng.fire(iid, "grade", {"grade": "great"}, actor="R-01")),
        ("R-01", "POST", f"/instances/{iid}/triggers/note", {"payload": {"text": "t", "ok": False}}, 409, GuardFailed,
         lambda: eng.fire(iid, "note", {"text": "t", "ok": False}, actor="R-01")),
        ("R-01", "POST", "/instances", {"workflow": "review", "data": {"case_id": "C-2"}}, 422, DataInvalid,
         lambda: eng.start("review", {"case_id": "C-2"}, actor="R-01")),
        ("R-01", "POST", "/instances", {"workflow": "reveiw", "data": {}}, 400, UsageError,
         lambda: eng.start("reveiw", {}, actor="R-01")),
        ("R-01", "POST", "/instances", {"workflow": "review", "data": {"case_id": "C-2", "reviewer": "R-1", "urgent": "yes"}}, 422,
         DataInvalid, lambda: eng.start("review", {"case_id": "C-2", "reviewer": "R-1", "urgent": "yes"}, actor="R-01")),
    ]
    for actor, method, path, body, status, error, call in cases:
        with api.as_(actor, ["Manager"] if actor == "M-01" else []) as http:
            response = http.request(method, path, json=body)
        assert response.status_code == status, (path, response.text)
        assert response.json()["error"] == error.__name__
        assert response.json() == json.loads(json.dumps(python_error(call))), path
    assert api.engine.get(iid).rev == 1


def test_action_failed_and_out_of_order(api):
    iid = review(api)
    with api.client(key=api.api_key) as http:  # explode: an action that fails (manager)
        exploded = http.post(f"/instances/{iid}/triggers/explode")
        assert exploded.status_code == 500 and exploded.json()["error"] == EvaluationFailed.__name__  # the configuration's fault
        assert exploded.json() == python_error(lambda: api.engine.fire(iid, "explode", actor="svc-case", roles=["manager"]))
        http.post(f"/instances/{iid}/triggers/pause")
        api.clock.set("2027-01-04T08:00")  # the server's clock went back an hour (another server's, say)
        late = http.post(f"/instances/{iid}/triggers/resume")
    assert late.status_code == 409 and late.json()["error"] == OutOfOrder.__name__
    assert [h["trigger"] for h in api.engine.history(iid)] == ["(start)", "pause"]
    assert api.engine.outbox() == []


class _Raises:
    """Stands in for the engine's fire to make it raise what the engine may raise."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise self.exc


@pytest.mark.parametrize(("exc", "status", "retry_after"), [
    (ConcurrencyConflict("another writer changed review-000001 first", instance="review-000001"), 409, "0"),
    (StoreError("database is locked beyond the timeout", retry=True), 503, "1"),
    (StoreError("the database file is damaged: run PRAGMA integrity_check", retry=False), 503, None),
    (RequestIdReused("used for something else", request_id="k", first={"actor": "R-01"}), 422, None),
    (UsageError("unreadable time"), 400, None),
])
def test_errors_map_to_statuses_with_retry_after(api, monkeypatch, exc, status, retry_after):
    iid = review(api)
    monkeypatch.setattr(api.engine, "fire", _Raises(exc))
    with api.as_("R-01") as http:
        response = http.post(f"/instances/{iid}/triggers/note", json={"payload": {"text": "t", "ok": True}})
    assert response.status_code == status
    assert response.json() == exc.to_dict()
    assert response.headers.get("retry-after") == retry_after


def test_a_bug_is_a_500_that_does_not_show_its_text(api, monkeypatch):
    iid = review(api)
    monkeypatch.setattr(api.engine, "get", _Raises(RuntimeError("secret detail from deep inside")))
    with api.as_("R-01") as http:
        response = http.get(f"/instances/{iid}")
    assert response.status_code == 500
    assert response.json() == {"error": "InternalError", "message": "internal error; the server's log says where"}


@pytest.mark.parametrize(("content", "words"), [
    (b"{not json", "JSON decode error"),
    (b'{"payload": [1, 2]}', "body.payload"),
    (b'{"payload": {}, "extra": 1}', "body.extra"),
    (b'"a string"', "body"),
])
def test_a_malformed_body_is_422_request_invalid(api, content, words):
    iid = review(api)
    with api.as_("R-01") as http:
        response = http.post(f"/instances/{iid}/triggers/note", content=content, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "RequestInvalid" and words in response.json()["message"]
    assert api.engine.get(iid).rev == 1


def test_nan_in_a_payload_is_refused_by_the_engine_not_a_500(api):
    iid = review(api)
    with api.as_("R-01") as http:
        response = http.post(f"/instances/{iid}/triggers/note", content=b'{"payload": {"text": "t", "ok": true, "n": NaN}}',
                              headers={"content-type": "application/json"})
    assert response.status_code == 422 and response.json()["error"] == "PayloadInvalid"
    assert "JSON cannot hold" in response.json()["message"]


def test_unknown_routes_and_methods_are_json(api):
    with api.as_("R-01") as http:
        missing, wrong = http.get("/nowhere"), http.delete("/instances/x")
    assert missing.status_code == 404 and missing.json()["error"] == "NotFound"
    assert wrong.status_code == 405 and wrong.json()["error"] == "MethodNotAllowed"


def test_a_body_over_the_limit_is_413_however_it_is_sent(tmp_path, keys, tokens, api_key):
    live, app = make_api(tmp_path, keys, tokens, api_key, server={"advance_every_seconds": 0, "max_body_bytes": 2048})
    with ThreadServer(app) as server:
        live.url = server.url
        iid = review(live)
        big = json.dumps({"payload": {"text": "x" * 5000, "ok": True}}).encode()
        with live.as_("R-01") as http:
            declared = http.post(f"/instances/{iid}/triggers/note", content=big, headers={"content-type": "application/json"})
            streamed = http.post(f"/instances/{iid}/triggers/note", content=iter([big[:1000], big[1000:]]),
                                 headers={"content-type": "application/json"})  # chunked: no Content-Length
            small = http.post(f"/instances/{iid}/triggers/note", json={"payload": {"text": "x", "ok": True}})
        for response in (declared, streamed):
            assert response.status_code == 413 and response.json()["error"] == "BodyTooLarge", response.text
        assert small.status_code == 200
        assert live.engine.get(iid).data["notes"] == ["x"]
    live.engine.store.close()  # type: ignore[attr-defined]  # SQLiteStore.close


# --------------------------------------------------------------------------- Idempotency-Key


def test_a_retry_with_the_same_key_returns_the_first_result_and_applies_once(api):
    iid = review(api)
    with api.as_("R-01") as http:
        headers = {"Idempotency-Key": "form-42"}
        first = http.post(f"/instances/{iid}/triggers/note", json={"payload": {"text": "a", "ok": True}}, headers=headers)
        again = http.post(f"/instances/{iid}/triggers/note", json={"payload": {"text": "a", "ok": True}}, headers=headers)
        other = http.post(f"/instances/{iid}/triggers/note", json={"payload": {"text": "b", "ok": True}}, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and first.json()["data"]["notes"] == ["a"]
    assert other.status_code == 422 and other.json()["error"] == "RequestIdReused"
    assert "different payload" in other.json()["message"]
    assert api.engine.get(iid).data["notes"] == ["a"]
    assert [h.get("request_id") for h in api.engine.history(iid)] == [None, "form-42"]


def test_a_start_retried_with_its_key_starts_one_instance(api):
    with api.as_("QA-01", ["QA.Team"]) as http:
        body = {"workflow": "review", "data": {"case_id": "C-9", "reviewer": "R-01"}}
        first = http.post("/instances", json=body, headers={"Idempotency-Key": "start-1"})
        again = http.post("/instances", json=body, headers={"Idempotency-Key": "start-1"})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert len(api.engine.instances()) == 1


def test_a_key_someone_else_used_is_refused_without_saying_what_for(api):
    iid = review(api)
    with api.as_("R-01") as owner, api.as_("R-02") as other:
        owner.post(f"/instances/{iid}/triggers/note", json={"payload": {"text": "private", "ok": True}},
                   headers={"Idempotency-Key": "shared"})
        response = other.post("/instances", json={"workflow": "review", "data": {"case_id": "C-3", "reviewer": "R-02"}},
                              headers={"Idempotency-Key": "shared"})
    assert response.status_code == 422
    assert response.json() == {"error": "RequestIdReused", "request_id": "shared",
                               "message": "the Idempotency-Key 'shared' was already used for another call: give each call its own key"}
    assert len(api.engine.instances()) == 1


# --------------------------------------------------------------------------- reports and validation


@pytest.fixture
def bundled(tmp_path, keys, tokens, api_key):
    live, app = make_api(tmp_path, keys, tokens, api_key, config=bundled_config_dir(), server={"advance_every_seconds": 0})
    with ThreadServer(app) as server:
        live.url = server.url
        yield live
    live.engine.store.close()  # type: ignore[attr-defined]  # SQLiteStore.close


AUDIT = {"case_id": "C-0001", "team": "assessment_1", "service": "assessment", "lead_auditor": "TM-01", "peer_auditor": "IRO-02",
         "social_worker": "SW-01"}


def test_reports_in_each_format(bundled):
    bundled.engine.start("case_audit", AUDIT, actor="QA-01", roles=["qa_team"], at="2026-10-01T09:00")
    with bundled.as_("QA-01", ["QA.Team"]) as http:
        as_json = http.get("/reports/2026Q4")
        assert as_json.status_code == 200 and as_json.headers["content-type"] == "application/json"
        assert as_json.json()["period"]["label"] == "Q4 2026 (Oct-Dec 2026)"
        csv = http.get("/reports/2026-10", params={"format": "csv", "level": "team"})
        assert csv.headers["content-type"].startswith("text/csv") and csv.text.startswith("period_from,period_to,level,group,metric")
        assert http.get("/reports/2026Q4", params={"format": "html"}).text.lstrip().startswith("<!DOCTYPE html>")
        for params, words in [({"format": "pdf"}, "unknown format"), ({"level": "galaxy"}, "unknown level"),
                              ({"report": "../../etc/passwd"}, "named by its id"), ({"report": "nope"}, "no report 'nope'")]:
            refused = http.get("/reports/2026Q4", params=params)
            assert refused.status_code == 400 and words in refused.json()["message"], params
        assert http.get("/reports/someday").status_code == 400


def test_validate_checks_proposed_files_over_the_running_configuration(bundled):
    bundled.engine.start("case_audit", AUDIT, actor="QA-01", roles=["qa_team"], at="2026-10-01T09:00")
    root = bundled_config_dir()
    with bundled.as_("QA-01", ["QA.Team"]) as http:
        assert http.post("/validate").json() == {"ok": True, "problems": []}
        text = (root / "workflows" / "case_audit.yaml").read_text().replace("to: allocation_rejected", "to: allocation_rejectd", 1)
        broken = http.post("/validate", json={"files": {"workflows/case_audit.yaml": text}}).json()
        assert broken["ok"] is False
        (problem,) = [p for p in broken["problems"] if p["severity"] == "error"]
        assert problem["file"] == "workflows/case_audit.yaml" and problem["line"] > 0 and "allocation_rejectd" in problem["message"]
        stranded = http.post("/validate", json={"files": {"workflows/case_audit.yaml": None}}).json()
        assert stranded["ok"] is False
        assert any("case_audit" in p["message"] for p in stranded["problems"] if p["severity"] == "error")
        for path in ("../../etc/passwd", "/etc/passwd", "workflows/../x.yaml", "schemas/workflow.schema.json", "workflows/a.txt"):
            refused = http.post("/validate", json={"files": {path: "x: 1"}})
            assert refused.status_code == 400, path
    assert (root / "workflows" / "case_audit.yaml").read_text().count("to: allocation_rejected") >= 1  # the real file untouched


# --------------------------------------------------------------------------- the OpenAPI document


def test_the_openapi_document_lists_every_route_and_both_credentials(api):
    document = httpx.get(f"{api.url}/openapi.json").json()
    assert document["info"]["title"] == "qaflow"
    from engine.server.app import routers

    expected = {(route.path, method.lower()) for router in routers() for route in router.routes for method in route.methods}  # type: ignore[attr-defined]
    listed = {(path, method) for path, item in document["paths"].items() for method in item}
    assert expected == listed
    assert {"/instances", "/instances/{instance_id}/triggers/{trigger}", "/instances/{instance_id}", "/instances/{instance_id}/history",
            "/instances/{instance_id}/explain", "/instances/{instance_id}/triggers", "/worklist", "/outbox", "/outbox/claim",
            "/outbox/{alert_id}/ack", "/advance", "/programme/start", "/reports/{period}", "/validate", "/me", "/health"} == set(document["paths"])
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert operation.get("description") and operation.get("responses"), (method, path)  # each route says what it does
    schemes = document["components"]["securitySchemes"]
    assert schemes["oidc"] == {"type": "http", "scheme": "bearer", "description": schemes["oidc"]["description"]}
    assert schemes["apiKey"]["in"] == "header" and schemes["apiKey"]["name"] == "X-API-Key"
    fire = document["paths"]["/instances/{instance_id}/triggers/{trigger}"]["post"]
    assert {"401", "403", "404", "409", "422", "503"} <= set(fire["responses"])
    assert any(p["name"] == "Idempotency-Key" for p in fire["parameters"])
    assert "actor" not in json.dumps(document["components"]["schemas"]["FireBody"])
    listed_query = document["paths"]["/instances"]["get"]
    assert {p["name"] for p in listed_query["parameters"]} >= {"workflow", "state", "where", "due_before", "limit", "after"}
    assert listed_query["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/InstancePageOut"}
    assert document["paths"]["/worklist"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/WorklistOut"}
    assert not {"actor", "roles"} & {p["name"] for p in document["paths"]["/worklist"]["get"]["parameters"]}
    claim = document["paths"]["/outbox/claim"]["post"]
    assert claim["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ClaimOut"}
    assert set(document["components"]["schemas"]["ClaimBody"]["properties"]) == {"limit", "lease_seconds", "process"}
    assert {"204", "403", "404"} <= set(document["paths"]["/outbox/{alert_id}/ack"]["post"]["responses"])
    assert httpx.get(f"{api.url}/docs").status_code == 200


def test_health_needs_no_credentials(api):
    assert httpx.get(f"{api.url}/health").json()["status"] == "ok"


def test_the_server_refuses_an_engine_without_a_clock():
    from server_harness import FIXTURE

    from engine import Engine, load_config
    from engine.server import create_app
    from engine.server.settings import DevIdentity, ServerSettings

    with pytest.raises(UsageError, match="needs a clock"):
        create_app(Engine(load_config(FIXTURE)), ServerSettings(dev=DevIdentity("dev", frozenset())))


def test_programme_start_starts_the_months_planned_work_once(bundled):
    bundled.clock.set("2026-11-02T08:00")
    with bundled.as_("QA-01", ["QA.Team"]) as http:
        first = http.post("/programme/start", params={"month": "2026-11"})
        assert first.status_code == 200, first.text
        started = [(i["programme"], i["item"]) for i in first.json()["items"] if i["outcome"] == "started"]
        assert ("safeguarding_2026_q3", "safeguarding_neglect") in started and ("", "briefing:2026-11") in started
        again = http.post("/programme/start", params={"month": "2026-11"}).json()
        assert {i["outcome"] for i in again["items"]} == {"already_started"}
        assert http.post("/programme/start", params={"month": "Nov"}).status_code == 400
        assert http.post("/programme/start", params={"month": "2026-11", "at": "2026-11-01T00:00"}).status_code == 400
    neglect = [v for v in bundled.engine.instances("thematic_audit") if v.data["theme"] == "neglect"]
    assert len(neglect) == 1 and neglect[0].created_at.isoformat() == "2026-11-02T08:00:00+00:00"
