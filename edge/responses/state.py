"""A background response's life in the store: its event log and its one terminal transition.

Every terminal transition (completed, failed, incomplete, cancelled) is a conditional append:
exactly one of the worker, a canceller or a takeover wins it, and the winner alone settles the
quota reservation taken when the run was queued.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from aiohttp import web
from redis.exceptions import RedisError

from edge.appkeys import QUOTA, SETTINGS, STORE
from edge.errors import GatewayError, error_body
from edge.quota.reservation import Reservation
from edge.store import StoreUnavailable
from edge.store.responses import Change, StoredResponse
from edge.translate.responses_object import error_json
from edge.usage import Usage

log = logging.getLogger(__name__)
CANCEL_TOPIC = "response-cancel:"


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
    except (RedisError, OSError, StoreUnavailable) as exc:
        log.warning("background usage not recorded: %s", type(exc).__name__)


class RunLog:
    """Writes one run attempt's events; refused once the attempt no longer owns the run."""

    def __init__(self, app: web.Application, record: StoredResponse, attempt: str) -> None:
        self.app = app
        self.record = record
        self.attempt = attempt
        self.emitted = 0  # writes this attempt made (or began) after it started: then no restart

    async def _append(self, events: list[dict[str, Any]], change: Change) -> int:
        store = self.app[STORE].responses
        ttl = self.app[SETTINGS].responses_retention
        data = [encode_event(e) for e in events]
        return await store.append(self.record.account, self.record.id, data, change, ttl)

    async def emit(self, events: list[dict[str, Any]]) -> None:
        """Log events; raises RunStopped when the run was ended elsewhere."""
        # Counted before the append lands: a run stopped mid-append may have logged them.
        self.emitted += len(events)
        if events and await self._append(events, Change(attempt=self.attempt)) < 0:
            raise RunStopped

    async def end(
        self, events: list[dict[str, Any]], response: dict[str, Any], usage: Usage | None
    ) -> bool:
        """Log the last events and the terminal status; settle if this attempt won."""
        change = Change(attempt=self.attempt, status=str(response["status"]), response=response)
        self.emitted += len(events) + 1  # the terminal status too: it may land after a requeue
        if await self._append(events, change) < 0:
            return False
        await settle(self.app, self.record, usage)
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
) -> bool:
    """Move a run to a terminal status without owning it (cancel, takeover); True if it won."""
    change = Change(status=status, response=response)
    store = app[STORE].responses
    ttl = app[SETTINGS].responses_retention
    data = [encode_event(e) for e in events]
    if await store.append(record.account, record.id, data, change, ttl) < 0:
        return False
    await settle(app, record, None)
    return True


async def cancel(app: web.Application, record: StoredResponse) -> bool:
    """Cancel a queued or running background response; True if this call cancelled it."""
    cancelled = {**record.response, "status": "cancelled"}
    event = {"type": "response.incomplete", "response": cancelled}
    if not await end_elsewhere(app, record, "cancelled", [event], cancelled):
        return False
    # Whichever process runs it closes its upstream call when it hears this.
    await app[STORE].invalidation.publish(cancel_topic(record.account, record.id))
    return True
