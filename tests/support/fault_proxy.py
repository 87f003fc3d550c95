"""A TCP fault proxy between the gateway and Redis or an upstream: latency, reset, blackhole.

The mode can change at any time; it applies to bytes forwarded from then on (and, for
`reset`, to every open connection at once).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Literal

from tests.support.ports import free_port

Mode = Literal["pass", "latency", "reset", "blackhole"]


class FaultProxy:
    """Forwards 127.0.0.1:<port> to a target, misbehaving on demand."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.mode: Mode = "pass"
        self.latency = 0.0
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url_host_port(self) -> str:
        """host:port to point a client at."""
        return f"127.0.0.1:{self.port}"

    async def start(self) -> FaultProxy:
        """Listen."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        return self

    async def stop(self) -> None:
        """Stop listening and drop every connection."""
        self.reset_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def set(self, mode: Mode, latency: float = 0.0) -> None:
        """Change behaviour; `reset` also aborts every open connection now."""
        self.mode, self.latency = mode, latency
        if mode == "reset":
            self.reset_all()

    def reset_all(self) -> None:
        """Abort every proxied connection (an RST to both sides)."""
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "reset":
            writer.transport.abort()
            return
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update({writer, up_writer})
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )
        for w in (writer, up_writer):
            self._writers.discard(w)
            with contextlib.suppress(OSError, RuntimeError):
                w.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            data = await reader.read(65536)
            if not data:
                with contextlib.suppress(OSError, RuntimeError):
                    writer.write_eof()
                return
            while self.mode == "blackhole":
                await asyncio.sleep(0.01)  # hold the bytes: the peer sees silence, not an error
            if self.mode == "latency" and self.latency:
                await asyncio.sleep(self.latency)
            writer.write(data)
            await writer.drain()
