"""Server-sent events: an incremental parser that keeps each event's exact bytes, and writers."""

from __future__ import annotations

import re
from dataclasses import dataclass

_BOUNDARY = re.compile(rb"\r\n\r\n|\n\n|\r\r")
MAX_EVENT_BYTES = 16 * 1024 * 1024


class SSEError(ValueError):
    """The stream is not valid SSE (or an event is unreasonably large)."""


@dataclass(slots=True)
class SSEEvent:
    """One dispatched event: its fields, and the raw bytes it arrived as (separator included)."""

    raw: bytes
    event: str | None
    data: str

    @property
    def is_done(self) -> bool:
        """The OpenAI end-of-stream sentinel."""
        return self.data == "[DONE]"


def _parse_block(block: bytes) -> tuple[str | None, str | None]:
    event: str | None = None
    data: list[str] = []
    for line in block.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line or line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
    return event, ("\n".join(data) if data else None)


class SSEParser:
    """Feed bytes as they arrive; get whole events back."""

    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self._buf = b""
        self._max = max_event_bytes

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Events completed by this chunk (comments and empty events are skipped)."""
        # Only the new bytes (and the 3 before them, for a split separator) can hold a boundary.
        scan = max(0, len(self._buf) - 3)
        self._buf += chunk
        out: list[SSEEvent] = []
        start = 0
        while True:
            match = _BOUNDARY.search(self._buf, max(start, scan))
            if match is None:
                break
            block = self._buf[start : match.start()]
            raw = self._buf[start : match.end()]
            start = match.end()
            try:
                event, data = _parse_block(block)
            except UnicodeDecodeError as exc:
                raise SSEError("event is not valid UTF-8") from exc
            if data is not None:
                out.append(SSEEvent(raw=raw, event=event, data=data))
        self._buf = self._buf[start:]
        if len(self._buf) > self._max:
            raise SSEError("event exceeds the size limit")
        return out

    def close(self) -> list[SSEEvent]:
        """Flush an unterminated final event (some servers omit the last blank line)."""
        rest, self._buf = self._buf, b""
        if not rest.strip():
            return []
        try:
            event, data = _parse_block(rest)
        except UnicodeDecodeError as exc:
            raise SSEError("event is not valid UTF-8") from exc
        return [SSEEvent(raw=rest, event=event, data=data)] if data is not None else []

    @property
    def pending(self) -> int:
        """Bytes received but not yet part of a whole event."""
        return len(self._buf)


def encode(data: bytes, event: str | None = None) -> bytes:
    """One event, ready for a single write."""
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"
