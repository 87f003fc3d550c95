"""Server-sent events: an incremental parser that keeps each event's exact bytes, and writers.

A relay only reads a few events (usage, the end of the stream) and passes every other one on as
it came: an event is found in bytes and checked in its text, and its fields are parsed only
when asked for.
"""

from __future__ import annotations

import re

_BOUNDARY = re.compile(rb"\r\n\r\n|\n\n|\r\r")
MAX_EVENT_BYTES = 16 * 1024 * 1024


class SSEError(ValueError):
    """The stream is not valid SSE (or an event is unreasonably large)."""


def _parse_block(text: str) -> tuple[str | None, str | None]:
    event: str | None = None
    data: list[str] = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line or line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
    return event, ("\n".join(data) if data else None)


def _has_data(text: str) -> bool:
    """Whether a block has a `data` field (blocks without one dispatch no event)."""
    if text.startswith("data:") or "\ndata:" in text or "\rdata:" in text:
        return True
    return any(line == "data" for line in text.splitlines())


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SSEError("event is not valid UTF-8") from exc


def _event_name(text: str) -> str | None:
    """A block's `event` field (the last one, as SSE reads it), without parsing its data."""
    name: str | None = None
    if "event" in text:
        for line in text.splitlines():
            if line.startswith("event"):
                field, _, value = line.partition(":")
                if field == "event":
                    name = value.removeprefix(" ")
    return name


class SSEEvent:
    """One dispatched event: the raw bytes it arrived as (separator included) and their text;
    its name and data are read from the text the first time they are asked for."""

    __slots__ = ("_data", "_event", "_named", "_parsed", "raw", "text")

    def __init__(
        self, raw: bytes, event: str | None = None, data: str | None = None, text: str = ""
    ) -> None:
        self.raw = raw
        # What a relay scans for the few events it reads (decoding is cheap, parsing is not);
        # an event made from its fields alone is scanned in its data.
        self.text = text or (raw.decode("utf-8", "replace") if raw else data or "")
        self._event = event
        self._data = data or ""
        self._parsed = self._named = data is not None

    @property
    def event(self) -> str | None:
        """The event's name (its `event` field)."""
        if not self._named:
            self._event, self._named = _event_name(self.text), True
        return self._event

    @property
    def data(self) -> str:
        """The event's data lines, joined."""
        if not self._parsed:
            event, data = _parse_block(self.text)
            self._event, self._data, self._parsed = event, data or "", True
            self._named = True
        return self._data

    @property
    def is_done(self) -> bool:
        """The OpenAI end-of-stream sentinel."""
        return ("[DONE]" in self.text or self._parsed) and self.data == "[DONE]"

    def __repr__(self) -> str:
        return f"SSEEvent(raw={self.raw!r})"


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
        # Streams almost always end events with LF LF: found with a plain search then, unless
        # a CR anywhere could make an earlier boundary.
        plain = b"\r" not in self._buf
        while True:
            if plain:
                at = self._buf.find(b"\n\n", max(start, scan))
                end = at + 2 if at >= 0 else -1
            else:
                match = _BOUNDARY.search(self._buf, max(start, scan))
                end = match.end() if match is not None else -1
            if end < 0:
                break
            raw = self._buf[start:end]
            start = end
            text = _decode(raw)
            if _has_data(text):
                out.append(SSEEvent(raw, text=text))
        self._buf = self._buf[start:]
        if len(self._buf) > self._max:
            raise SSEError("event exceeds the size limit")
        return out

    def close(self) -> list[SSEEvent]:
        """Flush an unterminated final event (some servers omit the last blank line)."""
        rest, self._buf = self._buf, b""
        if not rest.strip():
            return []
        text = _decode(rest)
        return [SSEEvent(rest, text=text)] if _has_data(text) else []

    @property
    def pending(self) -> int:
        """Bytes received but not yet part of a whole event."""
        return len(self._buf)


def encode(data: bytes, event: str | None = None) -> bytes:
    """One event, ready for a single write."""
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"
