"""GET /instances and GET /worklist over a running server: the same pages as Engine.query and Engine.worklist,
filters from the query string, cursors followed to the end, the caller from the credentials only."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from server_harness import DAY0, Api, ThreadServer, make_api

from engine import QaflowError
from engine.server.instances import instance_json

REVIEWERS = ["R-01", "R-02", "R-01", "R-02", "R-01", "R-01", "R-02"]


def seed(api: Api) -> list[str]:
    """Seven reviews started a day apart (reviewers above, every third urgent); the fifth graded and closed."""
    ids = []
    for k, reviewer in enumerate(REVIEWERS):
        at = f"2027-01-{4 + k:02d}T09:00"
        ids.append(api.engine.start("review", {"case_id": f"C-{k}", "reviewer": reviewer, "urgent": k % 3 == 0},
                                    actor="QA-01", at=at).id)
    api.engine.fire(ids[4], "grade", {"grade": "good"}, actor="R-01", at="2027-01-11T09:00")
    return ids


def pages(http: httpx.Client, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every page of a paged route, following next until it is null."""
    got = []
    after = None
    while True:
        response = http.get(path, params={**params, **({"after": after} if after else {})})
        assert response.status_code == 200, response.text
        got.append(response.json())
        after = response.json()["next"]
        if after is None:
            return got


def engine_pages(call: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """The same pages through the Python API, as JSON."""
    got = []
    after = None
    while True:
        page = call(**kwargs, after=after)
        items = [instance_json(v) if hasattr(v, "rev") else v.to_dict() for v in page]
        got.append(json.loads(json.dumps({"items": items, "next": page.next}, default=str)))
        if page.next is None:
            return got
        after = page.next


def ids_of(found: list[dict[str, Any]]) -> list[str]:
    return [item["id"] for page in found for item in page["items"]]


# --------------------------------------------------------------------------- worklists


def test_worklists_of_two_callers_with_different_roles(api):
    ids = seed(api)
    open_ids = [iid for k, iid in enumerate(ids) if k != 4]
    with api.as_("R-01") as reviewer, api.as_("M-01", ["Manager"]) as manager, api.as_("QA-01", ["QA.Team"]) as qa:
        # R-01 holds no organisational role: only the reviews whose data names them (a bound role), still open
        mine = pages(reviewer, "/worklist", limit=2)
        assert ids_of(mine) == [ids[0], ids[2], ids[5]]
        assert mine == engine_pages(api.engine.worklist, actor="R-01", roles=[], limit=2)
        first = mine[0]["items"][0]
        assert first["triggers"] == [{"name": "grade", "title": ""}, {"name": "note", "title": ""}]  # the fixture gives no titles
        assert (first["workflow"], first["state"], first["deadline"], first["due"]) == ("review", "open", "response", "2027-01-18")
        # a manager (a role the token maps) may act on every open review, whoever reviews it
        theirs = pages(manager, "/worklist", limit=2)
        assert ids_of(theirs) == open_ids
        assert theirs == engine_pages(api.engine.worklist, actor="M-01", roles=["manager"], limit=2)
        assert "grade" not in {t["name"] for page in theirs for item in page["items"] for t in item["triggers"]}
        # nothing for qa_team to fire in the review workflow
        assert qa.get("/worklist").json() == {"items": [], "next": None}
        # the same filters as the instance queries
        due = reviewer.get("/worklist", params={"due_before": "2027-01-20", "where": "urgent:=true"}).json()
        assert ids_of([due]) == [ids[0]]  # due 18 Jan; the other urgent one of R-01's is closed


def test_a_worklist_follows_what_changes_between_calls(api):
    ids = seed(api)
    with api.as_("R-01") as reviewer:
        assert ids_of(pages(reviewer, "/worklist")) == [ids[0], ids[2], ids[5]]
        api.clock.set("2027-01-12T09:00")  # after the seeded starts
        graded = reviewer.post(f"/instances/{ids[2]}/triggers/grade", json={"payload": {"grade": "good"}})
        assert graded.status_code == 200
        assert ids_of(pages(reviewer, "/worklist")) == [ids[0], ids[5]]


@pytest.mark.parametrize("params", [
    {"actor": "R-02"}, {"roles": "manager"}, {"role": "manager"}, {"user": "R-02"}, {"on_behalf_of": "R-02"},
])
def test_a_query_string_that_names_who_is_asking_is_refused(api, params):
    seed(api)
    with api.as_("R-01") as reviewer:
        for path in ("/worklist", "/instances"):
            response = reviewer.get(path, params=params)
            assert response.status_code == 403, response.text
            assert response.json()["error"] == "Forbidden" and "may not say who is asking" in response.json()["message"]
            assert response.json()["claimed"] == list(params)


def test_a_query_string_that_dates_the_call_is_refused(api):
    with api.as_("R-01") as reviewer:
        response = reviewer.get("/worklist", params={"at": "2027-02-01T09:00"})
    assert response.status_code == 400 and "server's time" in response.json()["message"]


def test_a_worklist_needs_credentials_but_no_access_role(tmp_path, keys, tokens, api_key):
    live, app = make_api(tmp_path, keys, tokens, api_key, server={"advance_every_seconds": 0}, access={"read": ["qa_team"]})
    with ThreadServer(app) as server:
        live.url = server.url
        ids = seed(live)
        assert httpx.get(f"{live.url}/worklist").status_code == 401
        with live.as_("R-01") as reviewer:
            # the workflows' roles guard a worklist, as they guard fire: it shows only what the caller may act on
            assert ids_of(pages(reviewer, "/worklist")) == [ids[0], ids[2], ids[5]]
            refused = reviewer.get("/instances")
            assert refused.status_code == 403
            assert refused.json() == {"error": "Forbidden", "message": "R-01 may not read here: it needs the role qa_team",
                                      "operation": "read"}
        with live.as_("QA-01", ["QA.Team"]) as qa:
            assert len(ids_of(pages(qa, "/instances"))) == 7
    live.engine.store.close()  # type: ignore[attr-defined]  # SQLiteStore.close


# --------------------------------------------------------------------------- instance queries


def test_instances_by_data_field_due_date_and_state(api):
    ids = seed(api)
    with api.as_("QA-01", ["QA.Team"]) as qa:
        def found(**params: Any) -> list[str]:
            return ids_of(pages(qa, "/instances", **params))

        assert found() == ids
        assert found(where="reviewer=R-02") == [ids[1], ids[3], ids[6]]
        assert found(where=["reviewer=R-02", "urgent:=true"]) == [ids[3], ids[6]]
        assert found(where=["reviewer=R-02", "reviewer=nobody"]) == [ids[1], ids[3], ids[6]]  # a field twice: either
        assert found(where='reviewer:=["R-02", "nobody"]') == [ids[1], ids[3], ids[6]]
        assert found(where="urgent=true") == []  # the text "true", not the boolean
        assert found(where="grade:=null") == [iid for k, iid in enumerate(ids) if k != 4]
        # due 10 working days after each start: 18, 19, 20, 21 Jan (the 5th is met), 22 Jan...
        assert found(due_before="2027-01-20") == [ids[0], ids[1]]
        assert found(due_before="2027-01-20T00:00:00+00:00") == [ids[0], ids[1]]
        assert found(due_before="2027-01-21T00:00:00 00:00") == [ids[0], ids[1], ids[2]]  # a + sent unencoded
        assert found(state="closed") == [ids[4]]
        assert found(workflow="check") == []


def test_instance_pages_are_the_python_apis_pages_in_the_shape_of_get_instance(api):
    ids = seed(api)
    with api.as_("QA-01", ["QA.Team"]) as qa:
        got = pages(qa, "/instances", limit=3, where="reviewer=R-01")
        assert [len(p["items"]) for p in got] == [3, 1] and got[-1]["next"] is None
        assert got == engine_pages(api.engine.query, where={"reviewer": "R-01"}, limit=3)
        assert got[0]["items"][0] == qa.get(f"/instances/{ids[0]}").json()
        # a cursor resumes after its instance, also when instances were started in between
        later = api.engine.start("review", {"case_id": "C-9", "reviewer": "R-01"}, actor="QA-01", at=DAY0).id
        rest = qa.get("/instances", params={"limit": 3, "where": "reviewer=R-01", "after": got[0]["next"]}).json()
        assert ids_of([rest]) == [ids[5], later] and rest["next"] is None


def python_message(call: Any) -> dict[str, Any]:
    with pytest.raises(QaflowError) as info:
        call()
    return info.value.to_dict()


@pytest.mark.parametrize(("params", "status", "words"), [
    ({"after": "not-a-cursor"}, 400, "is not a cursor"),
    ({"where": "reviewer"}, 400, "where 'reviewer': write FIELD=TEXT"),
    ({"where": "n:=NaN"}, 400, "is not a JSON value"),
    ({"where": "a.b=1"}, 400, "is not a data field name"),
    ({"where": 'n:={"a": 1}'}, 400, "can be compared with text, numbers"),
    ({"due_before": "someday"}, 400, "someday"),
    ({"workflow": "a\u0007b"}, 400, "control character"),
    ({"limit": 0}, 422, "query.limit"),
    ({"limit": 1001}, 422, "query.limit"),
    ({"limit": "ten"}, 422, "query.limit"),
    ({"due-before": "2027-01-20"}, 422, "no query parameter 'due-before'"),
    ({"page": 2}, 422, "no query parameter 'page'"),
])
def test_malformed_queries_are_refused_and_say_why(api, params, status, words):
    seed(api)
    with api.as_("QA-01", ["QA.Team"]) as qa:
        for path in ("/instances", "/worklist"):
            response = qa.get(path, params=params)
            assert response.status_code == status, (path, response.text)
            assert words in response.json()["message"], response.text


def test_a_refused_query_has_the_python_apis_message(api):
    seed(api)
    with api.as_("QA-01", ["QA.Team"]) as qa:
        response = qa.get("/instances", params={"after": "bm9wZQ"})
    assert response.json() == python_message(lambda: api.engine.query(after="bm9wZQ"))
