"""Streaming a background response from its event log: replay after a sequence number, then
follow the live run, from whichever process runs it, until its terminal event."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from edge.appkeys import SETTINGS, STORE
from edge.context import RequestContext
from edge.errors import GatewayError, error_body
from edge.responses.state import decode_event
from edge.store.responses import ResponseStore, StoredResponse
from edge.streaming import KeptAliveStream, start_stream
from edge.translate.responses_client import sse_bytes
from edge.translate.responses_render import TERMINAL_EVENTS

_WAIT = 1.0  # seconds one read blocks for new events


def _error_event(seq: int, err: GatewayError) -> dict[str, Any]:
    return {"type": "error", "sequence_number": seq, "error": error_body("openai", err)["error"]}


@dataclass(slots=True)
class _Cursor:
    """The last sequence number written: shutdown numbers its terminal event after it."""

    after: int


async def tail(
    request: web.Request, ctx: RequestContext, record: StoredResponse, after: int
) -> web.StreamResponse:
    """Stream events numbered above `after` until the terminal one."""
    store = request.app[STORE].responses
    cursor = _Cursor(after)
    idle_limit = request.app[SETTINGS].timeouts.idle
    account, response_id = record.account, record.id

    def terminal(err: GatewayError) -> bytes:
        """The event that ends this stream when shutdown cuts it, numbered after the last."""
        return sse_bytes([_error_event(cursor.after + 1, err)])

    response = await start_stream(request, ctx, terminal=terminal, keepalive=True)
    try:
        await _follow(store, response, account, response_id, cursor, idle_limit)
    finally:
        if isinstance(response, KeptAliveStream):
            response.stop_pings()  # also when the client left and the handler was cancelled
    await response.write_eof()
    return response


async def _follow(
    store: ResponseStore,
    response: web.StreamResponse,
    account: str,
    response_id: str,
    cursor: _Cursor,
    idle_limit: float,
) -> None:
    """Write the logged events after the cursor, then the live ones, until the terminal event."""
    last_event = time.monotonic()
    while True:
        batch = await store.events(account, response_id, cursor.after, 0)
        if not batch:
            current = await store.get(account, response_id)
            if current is None:
                gone = GatewayError(404, "The response was deleted.", code="response_not_found")
                await response.write(sse_bytes([_error_event(cursor.after + 1, gone)]))
                break
            # The terminal event is logged with the terminal status: a finished response has
            # nothing more to come (unless it was logged between the two reads).
            wait = 0.0 if current.terminal else _WAIT
            batch = await store.events(account, response_id, cursor.after, wait)
            if not batch and current.terminal:
                break
        if batch:
            events = []
            for seq, data in batch:
                event = decode_event(seq, data)
                events.append(event)
                cursor.after = seq
                if event["type"] in TERMINAL_EVENTS:
                    break
            await response.write(sse_bytes(events))
            if events[-1]["type"] in TERMINAL_EVENTS:
                break
            last_event = time.monotonic()
        elif time.monotonic() - last_event > idle_limit:
            idle = GatewayError(504, "No event arrived in time.", code="stream_idle_timeout")
            await response.write(sse_bytes([_error_event(cursor.after + 1, idle)]))
            break
