"""Saving answered responses for later reads and chains, and reading them back for one account
and, for a credential bound to a branch, for that branch's lineage only; the account's storage
quota, checked before a call whose response will be stored; and `item_reference` input items,
resolved from the caller's stored responses."""

from __future__ import annotations

import copy
import logging
import math
import time
from typing import Any

import orjson
from aiohttp import web

from edge.appkeys import IDENTITY, QUOTA, SETTINGS, STORE
from edge.context import RequestContext, ctx_of
from edge.errors import GatewayError, bad_request
from edge.responses.chain import NOT_STORED, not_found, well_formed
from edge.store import StoreUnavailable
from edge.store.responses import (
    OVER_CAP,
    OVER_LIMIT,
    RESPONSE_OVERHEAD,
    ResponseStore,
    Room,
    StoredResponse,
    indexable,
)
from policies.branches import Lineage
from policies.quota import Rules

log = logging.getLogger(__name__)
LIMIT_CODE = "REQUEST_LIMIT_EXCEEDED"
# ctx.extra: the input positions whose `item_reference` was resolved, with the ids they named.
REFERENCED = "responses.referenced"
# One request may name this many item references, resolving to this many bytes at most (as
# much as a request body may hold): each costs a store read, and each is a copy of an item.
MAX_REFERENCES = 1000
MAX_REFERENCED_BYTES = 32 * 1024 * 1024


# Storage quota -------------------------------------------------------------------------------


async def account_rules(app: web.Application, account: str) -> Rules:
    """The effective rules of an account (its plan and overrides), as admission reads them."""
    record = await app[IDENTITY].account(account)
    if record is None:
        return app[QUOTA].plans.rules(None, None)
    return app[QUOTA].plans.rules(record.plan, record.quota)


def room_of(rules: Rules, strict: bool = True) -> Room:
    """What a write may store under an account's rules."""
    return Room(rules.storage_bytes, rules.max_stored_response_bytes, strict)


def storage_full(limit: int, used: int, need: int, room_at: float | None) -> GatewayError:
    """429 naming `storage_bytes`: the account's stored responses leave no room for `need`
    bytes. Retry-After says when enough of them will have expired; no SDK retry helps sooner
    (unless the caller deletes some), so it is not one to retry at once."""
    where = "bytes of stored responses (storage_bytes) for this account"
    if need > limit:
        message = (
            f"This response would store {need} bytes, more than the whole limit of {limit} "
            f"{where}. Send it with 'store': false."
        )
        return GatewayError(429, message, code=LIMIT_CODE, type="rate_limit_error", retry=False)
    message = (
        f"Storage limit exceeded: {limit} {where}; {used} are in use and this response would "
        f"store {need} more. Delete stored responses or send 'store': false"
    )
    headers = {}
    if room_at is not None:
        seconds = max(1, math.ceil(room_at - time.time()))
        headers["Retry-After"] = str(seconds)
        message += f"; enough of them expire in {seconds} seconds"
    return GatewayError(
        429, message + ".", code=LIMIT_CODE, type="rate_limit_error", headers=headers, retry=False
    )


def too_large(size: int, cap: int) -> GatewayError:
    """400 naming `max_stored_response_bytes`: one response would hold more than it may."""
    return GatewayError(
        400,
        f"This response cannot be stored: it would hold at least {size} bytes, more than the "
        f"{cap} bytes one stored response may hold (max_stored_response_bytes). Send it with "
        "'store': false, or a smaller input.",
        param="input",
        code="stored_response_too_large",
        retry=False,
    )


def run_storage_error(result: int, room: Room) -> GatewayError:
    """Why a background run's log was refused: the account's limit or the response's cap."""
    if result == OVER_LIMIT:
        return GatewayError(
            429,
            f"The response's event log reached the limit of {room.limit} bytes of stored "
            "responses (storage_bytes) for this account; the run was stopped.",
            code="storage_limit_exceeded",
            type="rate_limit_error",
            retry=False,
        )
    return GatewayError(
        400,
        f"The response's event log reached the {room.cap} bytes one stored response may hold "
        "(max_stored_response_bytes); the run was stopped.",
        code="stored_response_too_large",
        retry=False,
    )


async def refusal(app: web.Application, account: str, result: int, size: int, room: Room) -> None:
    """Raise the error of a store write refused with `result` (OVER_CAP or OVER_LIMIT)."""
    if result == OVER_CAP and room.cap is not None:
        raise too_large(size, room.cap)
    if result == OVER_LIMIT and room.limit is not None:
        held = await app[STORE].responses.storage(account, size, room.limit)
        raise storage_full(room.limit, held.used, size, held.room_at)


async def check_storage(app: web.Application, account: str, items: list[Any]) -> None:
    """Before a call whose response will be stored: 400 when its input items alone pass the
    per-response cap, 429 when the account's stored responses leave no room for them, 503
    when the store refuses writes (Redis at its maxmemory): the response could not be kept."""
    room = room_of(await account_rules(app, account))
    need = RESPONSE_OVERHEAD + len(orjson.dumps(items))
    if room.cap is not None and need > room.cap:
        raise too_large(need, room.cap)
    held = await app[STORE].responses.storage(account, need, room.limit, writing=True)
    if room.limit is not None and held.used + need > room.limit:
        raise storage_full(room.limit, held.used, need, held.room_at)


# Saving and loading --------------------------------------------------------------------------


async def save(
    app: web.Application,
    account: str,
    response: dict[str, Any] | None,
    input_items: list[dict[str, Any]],
    stored: bool,
    previous_response_id: str | None,
    recorded: dict[str, Any] | None = None,
    branch: str | None = None,
    referenced: dict[int, str] | None = None,
) -> None:
    """Keep an answered response (or, for `store: false`, a marker that it cannot be chained),
    recording the branch its request was on; `referenced` names the input items that are copies
    of stored items (resolved references): they stay indexed to the response that holds them.

    The answer has already been sent, so a store failure is logged, not raised. A stored
    response is counted against its account even past its `storage_bytes` (its input was
    checked before the call; the next store is refused), but one that would hold more than
    `max_stored_response_bytes` is not kept: a marker says why. A `store: false` marker is
    written only while the account has room for it.
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
    responses = app[STORE].responses
    ttl = app[SETTINGS].responses_retention
    try:
        rules = await account_rules(app, account)
        room = room_of(rules, strict=not stored)
        result = await responses.create(
            record, ttl, room=room, unindexed=set((referenced or {}).values())
        )
        if result == OVER_CAP:
            log.warning("response %s not stored: over max_stored_response_bytes", record.id)
            reason = (
                f"it would hold more than the {rules.max_stored_response_bytes} bytes one "
                "stored response may hold (max_stored_response_bytes)"
            )
            marker = StoredResponse(
                id=record.id,
                account=account,
                response={},
                status=record.status,
                stored=False,
                previous_response_id=previous_response_id,
                recorded={NOT_STORED: reason},
                branch=branch,
            )
            await responses.create(marker, ttl, room=room_of(rules))
    except StoreUnavailable as exc:
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
    record = await app[STORE].responses.get(account, response_id)
    if record is None or not record.stored:
        raise not_found(response_id)
    if reach is not None and not reach.covers(record.branch):
        raise not_found(response_id)
    return record


# Item references -----------------------------------------------------------------------------


def _is_reference(item: Any) -> bool:
    return isinstance(item, dict) and item.get("type") == "item_reference"


def item_not_found(item_id: str, position: int) -> GatewayError:
    """400 for a reference to an item the caller has not stored: unknown, expired, deleted,
    another account's or outside its branch lineage alike."""
    return bad_request(
        f"Item with id '{item_id}' not found. Items are kept only in responses stored with "
        "'store': true; send the item itself instead of a reference.",
        param=f"input[{position}].id",
        code="item_not_found",
    )


def _item_in(record: StoredResponse | None, item_id: str) -> dict[str, Any] | None:
    if record is None:
        return None
    output = record.response.get("output")
    for item in [*(output if isinstance(output, list) else []), *record.input_items]:
        if isinstance(item, dict) and item.get("id") == item_id:
            return item
    return None


def _wanted(raw: list[Any]) -> dict[int, str]:
    """The positions of the input's references, with the ids they name."""
    wanted: dict[int, str] = {}
    for i, item in enumerate(raw):
        if not _is_reference(item):
            continue
        item_id = item.get("id")
        if not isinstance(item_id, str) or not item_id:
            raise bad_request(
                f"Invalid 'input[{i}].id': expected the id of a stored item.",
                param=f"input[{i}].id",
                code="invalid_type",
            )
        wanted[i] = item_id
        if len(wanted) > MAX_REFERENCES:
            raise bad_request(
                f"Too many item references: at most {MAX_REFERENCES} in one request.",
                param="input",
            )
    return wanted


async def resolve_references(
    store: ResponseStore, account: str, raw: list[Any], reach: Lineage
) -> tuple[list[Any], dict[int, str], int]:
    """The input with each `item_reference` replaced by the item it names, from the account's
    stored responses within `reach` (input or output items); the positions resolved, with their
    ids; and the bytes the resolved items add. 400 naming the first id that is not there."""
    wanted = _wanted(raw)
    if not wanted:
        return raw, {}, 0
    ids = list(dict.fromkeys(i for i in wanted.values() if indexable(i)))
    holders = dict(zip(ids, await store.find_items(account, ids), strict=True))
    records: dict[str, StoredResponse | None] = {}
    for response_id in dict.fromkeys(h for h in holders.values() if h is not None):
        record = await store.get(account, response_id)
        reachable = record is not None and record.stored and reach.covers(record.branch)
        records[response_id] = record if reachable else None
    out = list(raw)
    added = 0
    for position, item_id in wanted.items():
        holder = holders.get(item_id)
        found = _item_in(records.get(holder) if holder else None, item_id)
        if found is None:
            raise item_not_found(item_id, position)
        added += len(orjson.dumps(found))
        if added > MAX_REFERENCED_BYTES:
            raise bad_request(
                f"The items referenced hold more than {MAX_REFERENCED_BYTES} bytes; send fewer "
                "references, or 'previous_response_id'.",
                param="input",
            )
        out[position] = copy.deepcopy(found)
    return out, wanted, added


async def resolve_input(request: web.Request, ctx: RequestContext) -> int:
    """Resolve the `item_reference` items of a Responses call's input in place (once per call):
    the caller's account, within its lineage. Returns the bytes the resolved items add, for the
    input estimate; the positions resolved are kept in `ctx.extra[REFERENCED]`."""
    if REFERENCED in ctx.extra:
        return 0
    ctx.extra[REFERENCED] = {}
    payload = ctx.payload
    raw = payload.get("input") if isinstance(payload, dict) else None
    if not isinstance(raw, list) or not any(_is_reference(i) for i in raw):
        return 0
    account = ctx.account
    if account is None:
        raise GatewayError(401, "Invalid authentication credentials", code="invalid_api_key")
    reach = await reach_of(request)
    items, resolved, added = await resolve_references(
        request.app[STORE].responses, account, raw, reach
    )
    payload["input"] = items
    ctx.extra[REFERENCED] = resolved
    return added
