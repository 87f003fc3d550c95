"""A minimal keep-alive HTTP/1.1 client on a raw asyncio protocol, timing each exchange.

Lighter than a general client, so the load generator adds as little noise as possible to the
latencies it measures. Understands Content-Length and chunked bodies; nothing else is needed.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import cast


@dataclass(slots=True)
class Exchange:
    """One request's outcome and timings (perf_counter seconds)."""

    status: int
    sent: float
    first_byte: float  # the first body byte (for a stream: its first event)
    done: float
    body_bytes: int
    tail: bytes  # the last 4 KiB of the body (a stream's terminal event)

    @property
    def latency(self) -> float:
        """Seconds from sending to the end of the body."""
        return self.done - self.sent

    @property
    def ttfb(self) -> float:
        """Seconds from sending to the first body byte."""
        return self.first_byte - self.sent


class ProtocolError(Exception):
    """The server's answer could not be parsed, or the connection closed mid-answer."""


class _Conn(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[Exchange] | None = None
        self.closed = False
        self._reset(0.0)

    def _reset(self, sent: float) -> None:
        self.sent = sent
        self.head_done = False
        self.status = 0
        self.length: int | None = None  # None: chunked
        self.chunk_left = -1  # -1: expecting a chunk-size line
        self.received = 0
        self.first = 0.0
        self.tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ProtocolError(f"connection lost: {exc}"))

    def data_received(self, data: bytes) -> None:
        if self.waiter is None or self.waiter.done():
            return
        self.buf += data
        try:
            self._parse()
        except (ValueError, ProtocolError) as exc:
            self.waiter.set_exception(ProtocolError(str(exc)))
            assert self.transport is not None
            self.transport.close()

    def _body(self, piece: bytes) -> None:
        if piece:
            if not self.received:
                self.first = time.perf_counter()
            self.received += len(piece)
            self.tail = (self.tail + piece)[-4096:]

    def _finish(self) -> None:
        assert self.waiter is not None
        now = time.perf_counter()
        self.waiter.set_result(
            Exchange(self.status, self.sent, self.first or now, now, self.received, self.tail)
        )

    def _parse(self) -> None:
        if not self.head_done:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end]).lower()
            del self.buf[: end + 4]
            self.status = int(head[9:12])
            self.head_done = True
            if b"\r\ntransfer-encoding: chunked" in head:
                self.length = None
            else:
                at = head.find(b"\r\ncontent-length:")
                if at < 0:
                    raise ProtocolError("neither Content-Length nor chunked")
                stop = head.find(b"\r\n", at + 2)
                self.length = int(head[at + 17 : stop if stop > 0 else len(head)])
        if self.length is not None:
            take = min(len(self.buf), self.length - self.received)
            self._body(bytes(self.buf[:take]))
            del self.buf[:take]
            if self.received >= self.length:
                self._finish()
            return
        self._parse_chunks()

    def _parse_chunks(self) -> None:
        while True:
            if self.chunk_left < 0:
                end = self.buf.find(b"\r\n")
                if end < 0:
                    return
                size = int(bytes(self.buf[:end]).split(b";")[0], 16)
                if size == 0:
                    if len(self.buf) < end + 4:
                        return  # the empty trailer line has not arrived yet
                    del self.buf[: end + 4]
                    self._finish()
                    return
                del self.buf[: end + 2]
                self.chunk_left = size
            if len(self.buf) < self.chunk_left + 2:
                if self.buf and self.chunk_left:
                    take = min(len(self.buf), self.chunk_left)
                    self._body(bytes(self.buf[:take]))
                    del self.buf[:take]
                    self.chunk_left -= take
                return
            self._body(bytes(self.buf[: self.chunk_left]))
            del self.buf[: self.chunk_left + 2]
            self.chunk_left = -1

    async def exchange(self, raw: bytes, timeout: float) -> Exchange:
        if self.closed or self.transport is None:
            raise ProtocolError("connection closed")
        loop = asyncio.get_running_loop()
        self.waiter = loop.create_future()
        self.buf.clear()
        self._reset(time.perf_counter())
        self.transport.write(raw)
        async with asyncio.timeout(timeout):
            return await self.waiter


class Connection:
    """One keep-alive connection to a host:port."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._proto: _Conn | None = None

    async def open(self) -> Connection:
        """Connect."""
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_connection(_Conn, self.host, self.port)
        self._proto = proto
        return self

    @property
    def usable(self) -> bool:
        """Open and idle-able."""
        return self._proto is not None and not self._proto.closed

    async def send(self, raw: bytes, timeout: float = 60.0) -> Exchange:
        """Send one request and read its whole answer."""
        if not self.usable:
            await self.open()
        assert self._proto is not None
        return await self._proto.exchange(raw, timeout)

    def close(self) -> None:
        """Close the socket."""
        if self._proto is not None and self._proto.transport is not None:
            self._proto.transport.close()
        self._proto = None


def build_request(host: str, port: int, path: str, headers: dict[str, str], body: bytes) -> bytes:
    """Wire bytes of a POST, built once and sent many times."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
