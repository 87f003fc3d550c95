"""Responses wire facts for the relay, plus what a relayed answer must leave behind.

While the provider's bytes pass through unchanged, `ResponsesObserver` reads the usage (from
`response.completed` or a whole body), the final response object and its output items (for the
store), and the last sequence number and snapshot (so a cut stream still ends with `error` and
`response.failed` numbered after the provider's own events).
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from edge.errors import GatewayError, error_body
from edge.sse import SSEEvent
from edge.translate.responses_client import sse_bytes
from edge.translate.responses_object import error_json
from edge.upstream.wire import WireSpec
from edge.usage import Usage, from_openai_responses

LIFECYCLE = frozenset(
    {"response.created", "response.queued", "response.in_progress", "response.completed"}
    | {"response.failed", "response.incomplete"}
)
TERMINAL = frozenset({"response.completed", "response.failed", "response.incomplete"})
# Read from an event's text: most events are relayed without their data ever being parsed.
_SEQ = re.compile(r'"sequence_number"\s*:\s*(\d+)')
_TYPE = re.compile(r'"type"\s*:\s*"([^"]+)"')
_WS = " \t\r\n"


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WS:
        i += 1
    return i


def members(text: str) -> dict[str, Any] | None:
    """A JSON object's complete members, even when the object itself is cut short.

    Providers have sent events whose closing brace is missing; the members before the cut are
    still exact, and they are all a gateway needs.
    """
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = None
    else:
        return value if isinstance(value, dict) else None
    decoder = json.JSONDecoder()
    i = _skip(text, 0)
    if not text.startswith("{", i):
        return None
    out: dict[str, Any] = {}
    i += 1
    try:
        while True:
            i = _skip(text, i)
            if i >= len(text) or text[i] == "}":
                return out
            key, i = decoder.raw_decode(text, i)
            i = _skip(text, i)
            if not text.startswith(":", i):
                return out
            value, i = decoder.raw_decode(text, _skip(text, i + 1))
            out[key] = value
            i = _skip(text, i)
            if text.startswith(",", i):
                i += 1
    except json.JSONDecodeError:
        return out


def event_type(event: SSEEvent) -> str | None:
    """An event's type: its SSE name, else the `type` in its data."""
    if event.event:
        return event.event
    match = _TYPE.search(event.text or event.data)  # or an event built from its data
    return match.group(1) if match else None


class ResponsesObserver:
    """Watches one relayed Responses answer (see the module docstring)."""

    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.final: dict[str, Any] | None = None
        self.snapshot: dict[str, Any] | None = None
        self.items: dict[int, dict[str, Any]] = {}
        self.last_seq = -1
        self.count = 0

    def _body(self, body: Any) -> Usage | None:
        if isinstance(body, dict):
            self.final = body
            self.usage = from_openai_responses(body.get("usage"))
        return self.usage

    def _event(self, event: SSEEvent) -> Usage | None:
        self.count += 1
        seq = _SEQ.search(event.text or event.data)
        if seq is not None:
            self.last_seq = int(seq.group(1))
        kind = event_type(event)
        if kind not in LIFECYCLE and kind != "response.output_item.done":
            return None
        data = members(event.data)
        if data is None:
            return None
        if kind == "response.output_item.done":
            if isinstance(data.get("output_index"), int) and isinstance(data.get("item"), dict):
                self.items[data["output_index"]] = data["item"]
            return None
        response = data.get("response")
        if not isinstance(response, dict):
            return None
        if kind == "response.created":
            self.items = {}  # a new response in the same stream
        self.snapshot = response
        if kind in TERMINAL:
            self.final = response
            self.usage = from_openai_responses(response.get("usage"))
            return self.usage
        return None

    def final_object(self) -> dict[str, Any] | None:
        """The last response object, with the streamed items when its `output` came empty."""
        if self.final is None:
            return None
        final = dict(self.final)
        if not final.get("output") and self.items:
            final["output"] = [self.items[i] for i in sorted(self.items)]
        return final

    def stream_error(self, err: GatewayError) -> bytes:
        """`error` then `response.failed`, numbered after the last event seen."""
        seq = max(self.last_seq, self.count - 1) + 1
        failed = {**(self.snapshot or {}), "status": "failed", "error": error_json(err)}
        if self.items and not failed.get("output"):
            failed["output"] = [self.items[i] for i in sorted(self.items)]
        self.final = failed
        detail = error_body("openai", err)["error"]
        return sse_bytes(
            [
                {"type": "error", "sequence_number": seq, "error": detail},
                {"type": "response.failed", "sequence_number": seq + 1, "response": failed},
            ]
        )

    def spec(self) -> WireSpec:
        """The relay's view of this answer."""
        return WireSpec(
            usage_from_body=self._body,
            usage_from_event=self._event,
            is_terminal=lambda e: event_type(e) in TERMINAL,
            stream_error=self.stream_error,
            repair_event=repair_cut_event,
        )


def repair_cut_event(event: SSEEvent) -> bytes | None:
    """A provider has sent events whose JSON lost its closing brace; an SDK cannot parse them.
    Such an event goes out as its complete members, re-encoded; every other one as it came."""
    try:
        orjson.loads(event.data)
    except orjson.JSONDecodeError:
        data = members(event.data)
    else:
        return None
    kind = data.get("type") if data else None
    if data is None or not isinstance(kind, str) or event.event not in (None, kind):
        return None
    return sse_bytes([data])
