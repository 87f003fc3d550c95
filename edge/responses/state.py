"""A background response's life in the store: its event log and its one terminal transition.

Every terminal transition (completed, failed, incomplete, cancelled) is a conditional append:
exactly one of the worker, a canceller or a takeover wins it. The quota reservation taken when
the run was queued is settled once, by whoever knows what the run used:

- the attempt running it, when it writes the end (completed, failed, shut down), or when it
  stops because a cancel or delete ended the run while it ran: the provider's usage if it came,
  else the charge of a cut stream (`edge.responses.charge`);
- a canceller, for a run that had not started: nothing was used, the hold is released;
- a takeover, for a run whose process died: the charge of a cut stream, counted in its log.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from aiohttp import web

from edge.appkeys import QUOTA, SETTINGS, STORE
from edge.errors import GatewayError, error_body
from edge.quota.reservation import Reservation
from edge.responses.charge import cut_usage, relayed_in_log
from edge.responses.records import account_rules, room_of, run_storage_error
from edge.store import StoreUnavailable
from edge.store.responses import OVER_CAP, OVER_LIMIT, Change, Room, StoredResponse
from edge.translate.responses_object import error_json
from edge.usage import Usage

log = logging.getLogger(__name__)
CANCEL_TOPIC = "response-cancel:"
_CANCEL_TRIES = 3  # a run moves queued -> in_progress (-> queued at a shutdown) at most so often


def encode_event(event: dict[str, Any]) -> bytes:
    """An event as logged: numbered by the log, so without its own sequence number."""
    return orjson.dumps({k: v for k, v in event.items() if k != "sequence_number"})


def decode_event(seq: int, data: bytes) -> dict[str, Any]:
    """A logged event with its sequence number."""
    event: dict[str, Any] = orjson.loads(data)
    return {"type": event.get("type"), "sequence_number": seq, **event}


def cancel_topic(account: str, response_id: str) -> str:
    """The invalidation topic that tells every process to stop a run."""
    return f"{CANCEL_TOPIC}{account}/{response_id}"


class RunStopped(Exception):
    """The run lost its right to write: cancelled, taken over, deleted or expired."""


async def settle(app: web.Application, record: StoredResponse, usage: Usage | None) -> None:
    """Settle the reservation a background run took at enqueue (usage None: release it)."""
    raw = (record.job or {}).get("reservation")
    if not isinstance(raw, dict):
        return
    try:
        await app[QUOTA].settle_reservation(Reservation.from_json(raw), usage)
    except StoreUnavailable as exc:
        log.warning("background usage not recorded: %s", type(exc).__name__)


class RunLog:
    """Writes one run attempt's events; refused once the attempt no longer owns the run.

    What the run logs is counted against its account's stored bytes: an event (or a final
    object) that would take the log past the account's `storage_bytes` or the response's
    `max_stored_response_bytes` is not logged, and the run ends `failed` with an error naming
    the bound (its output left out of the failed object, whose events are counted past it)."""

    def __init__(self, app: web.Application, record: StoredResponse, attempt: str) -> None:
        self.app = app
        self.record = record
        self.attempt = attempt
        self.emitted = 0  # writes this attempt made (or began) after it started: then no restart
        self.relayed = 0  # events logged from the provider's answer: each is charged a token
        self.reported: Usage | None = None  # the usage the provider reported so far
        self.settled = False
        self.room: Room | None = None  # the account's storage bounds, read at the first write
        self.full: GatewayError | None = None  # the storage bound the log reached

    async def _append(
        self, events: list[dict[str, Any]], change: Change, checked: bool = False
    ) -> int:
        store = self.app[STORE].responses
        ttl = self.app[SETTINGS].responses_retention
        data = [encode_event(e) for e in events]
        room = None
        if checked:
            if self.room is None:
                self.room = room_of(await account_rules(self.app, self.record.account))
            room = self.room
        result = await store.append(self.record.account, self.record.id, data, change, ttl, room)
        if result in (OVER_LIMIT, OVER_CAP) and room is not None:
            self.full = run_storage_error(result, room)
        return result

    async def emit(self, events: list[dict[str, Any]]) -> None:
        """Log events; raises RunStopped when the run was ended elsewhere, and the storage
        error when the log reached a storage bound (the run then ends failed)."""
        # Counted before the append lands: a run stopped mid-append may have logged them.
        self.emitted += len(events)
        self.relayed += len(events)
        if not events:
            return
        if await self._append(events, Change(attempt=self.attempt), checked=True) < 0:
            if self.full is not None:
                raise self.full
            raise RunStopped

    def used(self, final: Usage | None) -> Usage | None:
        """What the run used: the provider's final usage, else the charge of a cut stream."""
        return final if final is not None else cut_usage(self.record, self.reported, self.relayed)

    async def end(
        self, events: list[dict[str, Any]], response: dict[str, Any], usage: Usage | None
    ) -> bool:
        """Log the last events and the terminal status; settle if this attempt won.

        `usage` is the provider's final usage (None when it never came)."""
        self.emitted += len(events) + 1  # the terminal status too: it may land after a requeue
        result = OVER_LIMIT
        if self.full is None:
            change = Change(attempt=self.attempt, status=str(response["status"]), response=response)
            result = await self._append(events, change, checked=True)
        if self.full is not None:
            # A storage bound was reached: the run fails with it, without its output.
            events, failed = failed_events({**response, "output": []}, self.full)
            change = Change(attempt=self.attempt, status="failed", response=failed)
            result = await self._append(events, change)
        if result < 0:
            return False
        self.settled = True
        await settle(self.app, self.record, self.used(usage))
        return True

    async def stopped(self) -> bool:
        """Settle a run that stopped without writing its end, if a cancel or delete ended it
        while this attempt ran (the canceller leaves that to the runner, who knows its usage);
        True if this call settled it."""
        if self.settled:
            return False
        now = await self.app[STORE].responses.get(self.record.account, self.record.id)
        if now is not None and (now.status != "cancelled" or now.attempt != self.attempt):
            return False  # not ended by a cancel of this attempt: whoever ended it settled it
        self.settled = True
        await settle(self.app, self.record, self.used(None))
        return True

    async def requeue(self) -> bool:
        """Put the run back to `queued` (logging `response.queued`) for another attempt to
        start afresh; True if this attempt still owned it."""
        queued = {**self.record.response, "status": "queued"}
        change = Change(attempt=self.attempt, status="queued", response=queued)
        return await self._append([{"type": "response.queued", "response": queued}], change) >= 0


def failed_events(
    snapshot: dict[str, Any], err: GatewayError, seq: int = 0
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """`error` and `response.failed` for a run that cannot go on, and the failed object."""
    failed = {**snapshot, "status": "failed", "error": error_json(err)}
    events = [
        {"type": "error", "sequence_number": seq, "error": error_body("openai", err)["error"]},
        {"type": "response.failed", "sequence_number": seq + 1, "response": failed},
    ]
    return events, failed


async def end_elsewhere(
    app: web.Application,
    record: StoredResponse,
    status: str,
    events: list[dict[str, Any]],
    response: dict[str, Any],
    expect: str,
) -> bool:
    """Move a run in status `expect` to a terminal status without owning it (cancel, refusal,
    takeover); True if it won. Settles nothing: the caller knows who must."""
    change = Change(expect=expect, status=status, response=response)
    store = app[STORE].responses
    ttl = app[SETTINGS].responses_retention
    data = [encode_event(e) for e in events]
    return await store.append(record.account, record.id, data, change, ttl) >= 0


async def settle_from_log(app: web.Application, record: StoredResponse, closing: int) -> None:
    """Settle a run whose process died, as its log shows it used: the charge of a cut stream
    for the events its last attempt logged (the log ends with the `closing` events that ended
    it). Nothing when the log shows it was not running: whoever ended it then settled it."""
    logged = await app[STORE].responses.events(record.account, record.id, -1, 0)
    kinds = [str(orjson.loads(data).get("type")) for _, data in logged]
    relayed = relayed_in_log(kinds, closing)
    if relayed is not None:
        await settle(app, record, cut_usage(record, None, relayed))


async def cancel(app: web.Application, record: StoredResponse) -> bool:
    """Cancel a queued or running background response; True if this call cancelled it.

    A run that had not started is settled here (it used nothing); a running one is settled by
    the process running it once it stops, since that process alone knows what it used."""
    store = app[STORE].responses
    for _ in range(_CANCEL_TRIES):
        if record.terminal:
            return False
        cancelled = {**record.response, "status": "cancelled"}
        event = {"type": "response.incomplete", "response": cancelled}
        if await end_elsewhere(app, record, "cancelled", [event], cancelled, record.status):
            break
        fresh = await store.get(record.account, record.id)  # it started, or ended, meanwhile
        if fresh is None:
            return False
        record = fresh
    else:
        return False
    if record.status == "queued":
        await settle(app, record, None)
    # Whichever process runs it closes its upstream call when it hears this.
    await app[STORE].invalidation.publish(cancel_topic(record.account, record.id))
    return True
