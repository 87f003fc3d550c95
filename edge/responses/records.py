"""Saving answered responses for later reads and chains, and reading them back for one account."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from aiohttp import web
from redis.exceptions import RedisError

from edge.appkeys import SETTINGS, STORE
from edge.responses.chain import not_found, well_formed
from edge.store import StoreUnavailable
from edge.store.responses import StoredResponse

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
) -> None:
    """Keep an answered response (or, for `store: false`, a marker that it cannot be chained).

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
    )
    try:
        await app[STORE].responses.create(record, app[SETTINGS].responses_retention)
    except (RedisError, OSError, StoreUnavailable) as exc:
        log.warning("response %s not stored: %s", record.id, type(exc).__name__)


async def load(app: web.Application, account: str, response_id: str) -> StoredResponse:
    """A stored response of this account; 404 for unknown, expired or foreign ids alike."""
    if not well_formed(response_id):
        raise not_found(response_id[:128])
    with store_call():
        record = await app[STORE].responses.get(account, response_id)
    if record is None or not record.stored:
        raise not_found(response_id)
    return record
