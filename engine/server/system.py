"""Routes about the server itself: whether it is up, and who the caller is as the server sees them."""

from __future__ import annotations

from fastapi import APIRouter

from .. import __version__
from .context import JSON
from .deps import Caller
from .schemas import IdentityOut, error_responses

router = APIRouter(tags=["server"])


@router.get("/health", response_model=None, responses={200: {"description": "The server is up"}})
def health() -> JSON:
    """Whether the server is up (no credentials needed; says nothing about the store or its contents)."""
    return JSON({"status": "ok", "version": __version__})


@router.get("/me", response_model=None, responses={200: {"model": IdentityOut, "description": "The caller"}, **error_responses()})
async def me(who: Caller) -> JSON:
    """The caller as the server established them: actor, mapped roles, and how (token, api_key, dev).
    Roles bound to an instance through its data are not listed: they depend on the instance."""
    return JSON(who.to_dict())
