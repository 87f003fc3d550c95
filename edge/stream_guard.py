"""Streams that cannot pile up: a small kernel send buffer per stream, and a client that takes no
byte for `EDGE_STREAM_WRITE_TIMEOUT` seconds while output waits is dropped, which cancels its
handler and so closes its provider call.

Progress is what the client's TCP stack acknowledged: the bytes written, less what waits in the
transport and in the kernel (SIOCOUTQ). A slow reader acknowledges a little at a time; a reader
that stopped acknowledges nothing."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import socket
import struct
import termios

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter

log = logging.getLogger("edge.stream")
# Linux doubles this: 256 KiB of kernel buffer per stream instead of the 4 MiB autotuning grants
# a client that stops reading. Still a few full segments on loopback (whose 64 KiB segments
# with a one-segment buffer wait out the peer's delayed ACK: 2 MB/s), and 2.5 MB/s per stream
# at 100 ms RTT, far above what token streams need.
SEND_BUFFER = 128 * 1024


def _unacknowledged(sock: socket.socket | None) -> int:
    """Bytes in the socket's send queue (sent but not acknowledged, or not sent yet)."""
    if sock is None:
        return 0
    try:
        raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    except (OSError, ValueError, AttributeError):
        return 0  # not a TCP socket on Linux: progress is what left the transport
    queued: int = struct.unpack("i", raw)[0]
    return queued


class GuardedStream(web.StreamResponse):
    """A streamed response that bounds what it buffers for a slow or stalled client."""

    def __init__(self, *, stall_timeout: float, request_id: str, status: int = 200) -> None:
        super().__init__(status=status)
        self._stall_timeout = stall_timeout
        self._request_id = request_id
        self._written = 0  # body bytes handed to the transport
        self._sent = 0  # of those, how many had left the transport at the last check
        self._progress_at = 0.0
        self._check: asyncio.TimerHandle | None = None
        self._transport: asyncio.Transport | None = None
        self._sock: socket.socket | None = None
        self.stalled = False

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        """Send the headers, shrink the socket's send buffer, and start watching progress."""
        writer = await super().prepare(request)
        # uvloop's transports are not asyncio.Transport subclasses: test for None only.
        transport = request.transport
        if transport is not None and not transport.is_closing():
            self._transport = transport
            sock = transport.get_extra_info("socket")
            if sock is not None:
                self._sock = sock
                # Best effort: a transport without a TCP socket keeps the kernel's default.
                with contextlib.suppress(OSError, AttributeError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
            loop = asyncio.get_running_loop()
            self._progress_at = loop.time()
            self._check = loop.call_later(self._interval, self._watch)
        return writer

    @property
    def _interval(self) -> float:
        return max(self._stall_timeout / 4, 0.05)

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        """Write, counting the bytes (progress is what has left the transport since)."""
        self._written += len(data)
        await super().write(data)

    async def write_eof(self, data: bytes = b"") -> None:
        """End the body; the watch lasts until the last bytes are handed over."""
        self._written += len(data)
        try:
            await super().write_eof(data)
        finally:
            self._stop()

    def _stop(self) -> None:
        if self._check is not None:
            self._check.cancel()
            self._check = None
        self._transport = None
        self._sock = None

    def _watch(self) -> None:
        self._check = None
        transport = self._transport
        if transport is None or transport.is_closing():
            self._stop()
            return
        loop = asyncio.get_running_loop()
        buffered = transport.get_write_buffer_size() + _unacknowledged(self._sock)
        sent = self._written - buffered
        if buffered == 0 or sent > self._sent:
            self._sent = sent
            self._progress_at = loop.time()
        elif loop.time() - self._progress_at >= self._stall_timeout:
            self._drop(transport, buffered)
            return
        self._check = loop.call_later(self._interval, self._watch)

    def _drop(self, transport: asyncio.Transport, buffered: int) -> None:
        # Aborting loses the connection: aiohttp cancels the handler, whose provider call is
        # closed as it unwinds.
        self.stalled = True
        self._stop()
        log.warning(
            "client stopped reading: stream dropped",
            extra={
                "request_id": self._request_id,
                "fields": {"buffered": buffered, "timeout_s": self._stall_timeout},
            },
        )
        transport.abort()
