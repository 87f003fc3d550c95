"""What a same-API relay must know of one wire format: where its usage is, which event ends a
stream, how it writes its terminal error. Each API's module declares one (`*_wire.py`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edge.errors import GatewayError
from edge.sse import SSEEvent
from edge.usage import Usage


@dataclass(frozen=True, slots=True)
class WireSpec:
    """What the relay must know of one API's wire format."""

    usage_from_body: Callable[[Any], Usage | None]
    # Reads one stream event; returns its usage, if it carries any.
    usage_from_event: Callable[[SSEEvent], Usage | None]
    is_terminal: Callable[[SSEEvent], bool]
    stream_error: Callable[[GatewayError], bytes]
    # Events to hold back from the client (e.g. a usage chunk the gateway asked for itself).
    hide_event: Callable[[SSEEvent], bool] | None = None
    # Bytes to send instead of a malformed event the client's SDK could not parse (None: as is).
    repair_event: Callable[[SSEEvent], bytes | None] | None = None
