"""A lean streaming client for long runs: a raw asyncio protocol that sends one Chat Completions
stream request, checks every delta belongs to its stream and arrives once and in order (the
deltas of `stream_upstream`), and records for each the delay the hops added since it was sent.
It can read at a fixed rate, like a slow mobile client. Used by the soak runs (tests/soak),
whose figures those delays are; `make test` reads none of them."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from dataclasses import dataclass, field
from typing import cast

import orjson

_CONTENT = re.compile(rb'"content":"(\d+):(\d+):(\d+)')


@dataclass
class StreamResult:
    """One stream's outcome."""

    ident: int
    status: int = 0
    deltas: int = 0
    complete: bool = False  # reached [DONE]
    errors: list[str] = field(default_factory=list)  # lost, doubled or crossed deltas
    lags: list[float] = field(default_factory=list)  # seconds from sent to received, per delta
    gaps: list[float] = field(default_factory=list)  # received gap minus sent gap, per delta
    received: int = 0  # body bytes


class _Proto(asyncio.Protocol):
    def __init__(
        self, result: StreamResult, rate: float | None, done: asyncio.Future[None]
    ) -> None:
        self.result = result
        self.rate = rate  # bytes per second, or None: as fast as they come
        self.done = done
        self.buf = b""
        self.events = b""
        self.head = False
        self.transport: asyncio.Transport | None = None
        self.last: tuple[int, int] | None = None  # (received ns, sent ns) of the last delta

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            if not self.result.complete:
                self.result.errors.append(
                    f"connection lost: {exc!r} after {self.result.received} B"
                )
            self.done.set_result(None)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic_ns()  # for soak figures only
        self.result.received += len(data)
        self.buf += data
        if not self.head:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            self.result.status = int(self.buf[9:12])
            self.buf = self.buf[end + 4 :]
            self.head = True
        self._chunks(now)
        if self.rate is not None and self.transport is not None:
            # Read no faster than the rate: stop reading for as long as these bytes are worth
            # (a rate of 0: stop for good, a client that stalled).
            self.transport.pause_reading()
            if self.rate:
                asyncio.get_running_loop().call_later(len(data) / self.rate, self._resume)

    def _resume(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def _chunks(self, now: int) -> None:
        while True:
            line_end = self.buf.find(b"\r\n")
            if line_end < 0:
                return
            size = int(self.buf[:line_end].split(b";")[0], 16)
            if len(self.buf) < line_end + 2 + size + 2:
                return
            self.events += self.buf[line_end + 2 : line_end + 2 + size]
            self.buf = self.buf[line_end + 2 + size + 2 :]
            if size == 0:
                if not self.done.done():
                    self.done.set_result(None)
                return
            self._events(now)

    def _events(self, now: int) -> None:
        while (end := self.events.find(b"\n\n")) >= 0:
            event, self.events = self.events[: end + 2], self.events[end + 2 :]
            if event.startswith(b"data: [DONE]"):
                self.result.complete = True
                continue
            found = _CONTENT.search(event)
            if found is None:
                if b'"error"' in event:
                    self.result.errors.append(event[:200].decode(errors="replace"))
                continue
            ident, index, sent = (int(g) for g in found.groups())
            if ident != self.result.ident:
                self.result.errors.append(f"crossed: delta of stream {ident}")
            elif index != self.result.deltas:
                self.result.errors.append(f"expected delta {self.result.deltas}, got {index}")
            self.result.deltas += 1
            self.result.lags.append((now - sent) / 1e9)
            if self.last is not None:
                received_gap = now - self.last[0]
                sent_gap = sent - self.last[1]
                self.result.gaps.append((received_gap - sent_gap) / 1e9)
            self.last = (now, sent)


def request(ident: int, chunks: int, delay_ms: int, key: str, pad: int = 0) -> bytes:
    """The raw request for one marked stream."""
    body = orjson.dumps(
        {
            "model": "gpt-5-4",
            "stream": True,
            "messages": [{"role": "user", "content": f"mark:{ident}:{chunks}:{delay_ms}:{pad}"}],
        }
    )
    return (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\n"
        b"Authorization: Bearer " + key.encode() + b"\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    ) + body


async def stream(
    port: int,
    raw: bytes,
    ident: int,
    timeout: float,
    rate: float | None = None,
    rcvbuf: int | None = None,
    result: StreamResult | None = None,
) -> StreamResult:
    """Run one stream on a new connection to its end (or `timeout`), reading at most `rate`
    bytes a second (0: nothing after the first bytes), into `result` if given (to watch it)."""
    loop = asyncio.get_running_loop()
    result = result or StreamResult(ident)
    done: asyncio.Future[None] = loop.create_future()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, ("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        result.errors.append(f"connect: {exc}")
        return result
    transport, _ = await loop.create_connection(lambda: _Proto(result, rate, done), sock=sock)
    transport.write(raw)
    try:
        await asyncio.wait_for(done, timeout)
    except TimeoutError:
        result.errors.append("timed out")
    finally:
        transport.abort()
    return result
