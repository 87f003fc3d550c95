"""Saving answered responses for later reads and chains, and reading them back for one account
and, for a credential bound to a branch, for that branch's lineage only."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from aiohttp import web
from redis.exceptions import RedisError

from edge.appkeys import IDENTITY, SETTINGS, STORE
from edge.context import ctx_of
from edge.responses.chain import not_found, well_formed
from edge.store import StoreUnavailable
from edge.store.responses import StoredResponse
from policies.branches import Lineage

log = logging.getLogger(__name__)


@contextlib.contextmanager
def store_call() -> Iterator[None]:
    """Redis failures become StoreUnavailable (a 503 with Retry-After, never a 500)."""
    try:
        yield
    except (RedisError, OSError) as exc:
        raise StoreUnavailable(type(exc).__name__) from exc


async def save(
    app: web.Application,
    account: str,
    response: dict[str, Any] | None,
    input_items: list[dict[str, Any]],
    stored: bool,
    previous_response_id: str | None,
    recorded: dict[str, Any] | None = None,
    branch: str | None = None,
) -> None:
    """Keep an answered response (or, for `store: false`, a marker that it cannot be chained),
    recording the branch its request was on.

    The answer has already been sent, so a store failure is logged, not raised.
    """
    if response is None or not isinstance(response.get("id"), str):
        return
    if not well_formed(response["id"]):
        log.warning("response not stored: the provider's id is not a plain id")
        return
    record = StoredResponse(
        id=response["id"],
        account=account,
        response=response if stored else {},
        input_items=input_items if stored else [],
        status=str(response.get("status") or "completed"),
        stored=stored,
        previous_response_id=previous_response_id,
        recorded=dict(recorded or {}) if stored else {},
        branch=branch,
    )
    try:
        await app[STORE].responses.create(record, app[SETTINGS].responses_retention)
    except (RedisError, OSError, StoreUnavailable) as exc:
        log.warning("response %s not stored: %s", record.id, type(exc).__name__)


async def reach_of(request: web.Request) -> Lineage:
    """The stored responses the caller reaches: all of its account's when its credential is not
    bound to a branch, else those created on its bound branch or a descendant."""
    who = ctx_of(request).principal
    if who is None or who.branch is None:
        return Lineage(None, {})
    if who.account is None:
        return Lineage(who.branch, {})
    tree = await request.app[IDENTITY].branches(who.account)
    return Lineage(who.branch, {b.id: b.parent for b in tree.values()})


async def load(
    app: web.Application, account: str, response_id: str, reach: Lineage | None = None
) -> StoredResponse:
    """A stored response of this account (within `reach`, when given); 404 for unknown,
    expired, foreign or out-of-lineage ids alike."""
    if not well_formed(response_id):
        raise not_found(response_id[:128])
    with store_call():
        record = await app[STORE].responses.get(account, response_id)
    if record is None or not record.stored:
        raise not_found(response_id)
    if reach is not None and not reach.covers(record.branch):
        raise not_found(response_id)
    return record
