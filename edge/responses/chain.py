"""`previous_response_id`: the stored transcript, from the first turn on, prepended to a request."""

from __future__ import annotations

import re
from typing import Any

from edge.errors import GatewayError, bad_request
from edge.store.responses import ResponseStore, StoredResponse
from policies.branches import Lineage

# A chain longer than this is refused rather than walked (each turn is one store read).
MAX_TURNS = 1000
# Ids are ours or a provider's: short and plain. Anything else cannot exist (and never reaches
# a store key).
_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}\Z")
# Set aside on the marker of a response that was answered but not kept (`recorded`), with why.
NOT_STORED = "not_stored"
# Set aside on a response one of a model's several deployments answered and keeps upstream
# (a passthrough with `store`): which one, so the conversation goes back there.
HELD_BY = "deployment"
HELD_FOR = "deployment_model"


def well_formed(response_id: str) -> bool:
    """Whether a string can be a response id at all."""
    return bool(_ID.match(response_id))


def not_found(response_id: str, param: str | None = None) -> GatewayError:
    """The 404 for an id that is unknown, expired, deleted, another account's, or outside the
    caller's branch lineage."""
    if param == "previous_response_id":
        return GatewayError(
            404,
            f"Previous response with id '{response_id}' not found.",
            param=param,
            code="previous_response_not_found",
        )
    return GatewayError(
        404, f"Response with id '{response_id}' not found.", code="response_not_found"
    )


async def _chain(
    store: ResponseStore, account: str, first: str, reach: Lineage | None
) -> list[StoredResponse]:
    turns: list[StoredResponse] = []
    current: str | None = first
    while current is not None:
        if not well_formed(current):
            raise not_found(current[:128], "previous_response_id")
        if len(turns) >= MAX_TURNS:
            raise bad_request(
                f"The conversation is longer than {MAX_TURNS} responses; start a new one.",
                param="previous_response_id",
            )
        record = await store.get(account, current)
        # A turn outside the caller's lineage is missing to it, before anything else is told.
        if record is None or (reach is not None and not reach.covers(record.branch)):
            raise not_found(current, "previous_response_id")
        if not record.stored:
            why = record.recorded.get(NOT_STORED)
            said = f"was not stored ({why})" if why else "was created with 'store': false"
            raise bad_request(
                f"Response '{current}' {said}, so it cannot be continued with "
                "'previous_response_id'. Send the whole conversation instead.",
                param="previous_response_id",
                code="previous_response_not_stored",
            )
        if not turns and not record.terminal:
            raise bad_request(
                f"Response '{current}' is still {record.status}; continue it once it has finished.",
                param="previous_response_id",
                code="previous_response_in_progress",
            )
        turns.append(record)
        current = record.previous_response_id
    return turns


async def transcript(
    store: ResponseStore, account: str, previous: str, reach: Lineage | None = None
) -> list[dict[str, Any]]:
    """Every earlier turn's input and output items, oldest first; with `reach`, every turn must
    be on a branch it covers (else 404, as for an unknown id)."""
    items: list[dict[str, Any]] = []
    for turn in reversed(await _chain(store, account, previous, reach)):
        items.extend(turn.input_items)
        items.extend(i for i in turn.response.get("output") or [] if isinstance(i, dict))
    return items


async def held_by(store: ResponseStore, account: str, previous: str, model: str) -> str | None:
    """The deployment of `model` holding a stored response's state upstream, if one does."""
    record = await store.get(account, previous)
    if record is None or record.recorded.get(HELD_FOR) != model:
        return None
    found = record.recorded.get(HELD_BY)
    return found if isinstance(found, str) else None
