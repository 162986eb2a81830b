"""Routes that ask across instances: a page of instances by workflow, state, data field and due date, and the caller's worklist."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from ..runtime.query import MAX_LIMIT, where_from_text
from .context import JSON, context
from .deps import Caller, Reader, refuse_unknown_query
from .instances import instance_json
from .schemas import InstancePageOut, WorklistOut, error_responses

router = APIRouter(tags=["queries"])

FILTERS = ("workflow", "state", "where", "due_before", "limit", "after")
# "2026-10-23T09:00 01:00": an offset whose + was sent unencoded, so that the query string read it as a space
_OFFSET_AS_SPACE = re.compile(r"(\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:?\d{2})$")


def page_filters(
    request: Request,
    workflow: Annotated[str | None, Query(description="Only instances of this workflow.", examples=["case_audit"])] = None,
    state: Annotated[str | None, Query(description="Only instances in this state.")] = None,
    where: Annotated[list[str] | None, Query(
        description="Only instances whose top-level data FIELD is VALUE: `FIELD=TEXT` compares with the text, `FIELD:=JSON` "
                    "with a number, true, false, null or a list meaning any of its values. Repeatable: every field given "
                    "must match; the same field twice matches either value.",
        examples=["team=assessment_1"])] = None,
    due_before: Annotated[str | None, Query(
        description="Only instances with a deadline still awaited (running, or breached and not yet met) due by this time "
                    "(ISO 8601; a date means its start; a deadline due on a day falls due at the end of it). "
                    "Send a + in an offset as %2B.",
        examples=["2026-10-23"])] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="At most this many on the page.")] = 50,
    after: Annotated[str | None, Query(description="The next of the page before: this page goes on after it.")] = None,
) -> dict[str, Any]:
    """The filters ``Engine.query`` and ``Engine.worklist`` take, read from the query string (and nothing else in it)."""
    refuse_unknown_query(request, FILTERS)
    if due_before is not None:
        due_before = _OFFSET_AS_SPACE.sub(r"\1+\2", due_before)
    return {"workflow": workflow, "state": state, "where": where_from_text(where or (), "where"), "due_before": due_before,
            "limit": limit, "after": after}


#: Declared after the caller in each route, so that credentials and access are checked before the query string.
Filters = Annotated[dict[str, Any], Depends(page_filters)]


@router.get("/instances", response_model=None,
            responses={200: {"model": InstancePageOut, "description": "A page of instances, in id order"},
                       **error_responses(400, 422)})
def list_instances(request: Request, who: Reader, filters: Filters) -> JSON:
    """A page of the instances that match every filter given, each as `GET /instances/{id}` shows it.

    Pages are keyset pages in instance id order: pass `next` as `after` for the next one (null at the end). An
    instance started while a host pages is never shown twice, and none that was there is skipped."""
    page = context(request).engine.query(**filters)
    return JSON({"items": [instance_json(view) for view in page], "next": page.next})


@router.get("/worklist", response_model=None,
            responses={200: {"model": WorklistOut, "description": "A page of the caller's worklist"}, **error_responses(400, 422)})
def worklist(request: Request, who: Caller, filters: Filters) -> JSON:
    """What the caller may fire now: each matching instance on which their roles (including roles bound to them
    through the instance's data) allow a trigger, with those triggers and its next deadline.

    The caller is who the credentials say, never a query parameter. Instances with nothing to fire are passed
    over, so a page may be short, even empty, while `next` is set: follow `next` until it is null."""
    page = context(request).engine.worklist(who.actor, who.roles, **filters)
    return JSON({"items": [item.to_dict() for item in page], "next": page.next})
