"""A fake provider for long stream runs, in a process of its own: a raw asyncio HTTP/1.1 server
answering every POST with an OpenAI chat stream whose every delta names its stream, its index
and the monotonic time it was sent, so a client can prove nothing was lost, doubled or crossed
and measure the delay each hop added. Used by the soak runs (tests/soak), whose figures those
delays are; `make test` reads none of them.

The request's first message says what to send: `mark:<id>:<chunks>:<delay ms>:<pad bytes>`
(`chunks` 0: endless). `GET /stats` answers open connections, open streams and, per stream id,
the bytes sent and whether the client left early.

    python -m tests.support.stream_upstream --port 9000 [--sndbuf 65536]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import socket
import time
from dataclasses import dataclass, field
from typing import cast

import orjson

_MARK = re.compile(rb"mark:(\d+):(\d+):(\d+):(\d+)")
_LENGTH = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)")
HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def delta(mark: int, index: int, pad: int) -> bytes:
    """One SSE event whose content is `<mark>:<index>:<sent ns>` (plus padding)."""
    text = f"{mark}:{index}:{time.monotonic_ns()}" + ("." * pad)  # for soak figures only
    body = {"id": "c", "object": "chat.completion.chunk"}
    body["choices"] = [{"index": 0, "delta": {"content": text}}]  # type: ignore[assignment]
    return b"data: " + orjson.dumps(body) + b"\n\n"


def ending(chunks: int) -> bytes:
    """The finish chunk, the usage chunk and [DONE]."""
    finish = {"id": "c", "object": "chat.completion.chunk"}
    finish["choices"] = [{"index": 0, "delta": {}, "finish_reason": "stop"}]  # type: ignore[assignment]
    usage = {"id": "c", "object": "chat.completion.chunk", "choices": []}
    usage["usage"] = {"prompt_tokens": 10, "completion_tokens": chunks}  # type: ignore[assignment]
    return (
        b"data: " + orjson.dumps(finish) + b"\n\ndata: " + orjson.dumps(usage) + b"\n\n"
        b"data: [DONE]\n\n"
    )


@dataclass
class Stats:
    """What the server saw."""

    open_connections: int = 0
    open_streams: int = 0
    sent: dict[int, int] = field(default_factory=dict)
    cut: dict[int, float] = field(default_factory=dict)  # stream id -> when its client left


class Conn(asyncio.Protocol):
    """One client connection (the gateway's pooled upstream connection)."""

    def __init__(self, stats: Stats, sndbuf: int | None) -> None:
        self.stats = stats
        self.sndbuf = sndbuf
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.writable = asyncio.Event()
        self.writable.set()
        self.task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.stats.open_connections += 1
        sock = self.transport.get_extra_info("socket")
        if self.sndbuf and sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.sndbuf)

    def connection_lost(self, exc: Exception | None) -> None:
        self.stats.open_connections -= 1
        self.writable.set()
        if self.task is not None:
            self.task.cancel()

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buf[: end + 4]
        found = _LENGTH.search(head)
        length = int(found.group(1)) if found else 0
        if len(self.buf) < end + 4 + length:
            return
        body = self.buf[end + 4 : end + 4 + length]
        self.buf = self.buf[end + 4 + length :]
        assert self.transport is not None
        if head.startswith(b"GET /stats"):
            stats = {
                "open_connections": self.stats.open_connections,
                "open_streams": self.stats.open_streams,
                "sent": self.stats.sent,
                "cut": self.stats.cut,
            }
            out = orjson.dumps(stats, option=orjson.OPT_NON_STR_KEYS)
            self.transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(out), out)
            )
            return
        mark = _MARK.search(body)
        if mark is None:
            self.transport.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            return
        ident, chunks, delay_ms, pad = (int(g) for g in mark.groups())
        self.task = asyncio.get_running_loop().create_task(
            self._stream(ident, chunks, delay_ms / 1000, pad)
        )

    async def _write(self, data: bytes) -> None:
        assert self.transport is not None
        if self.transport.is_closing():
            raise ConnectionResetError
        self.transport.write(data)
        await self.writable.wait()

    async def _stream(self, ident: int, chunks: int, delay: float, pad: int) -> None:
        self.stats.open_streams += 1
        self.stats.sent[ident] = 0
        index = 0
        try:
            await self._write(HEAD)
            loop = asyncio.get_running_loop()
            next_at = loop.time()
            while chunks == 0 or index < chunks:
                if delay:
                    next_at += delay
                    await asyncio.sleep(max(0.0, next_at - loop.time()))
                frame = delta(ident, index, pad)
                await self._write(_chunk(frame))
                self.stats.sent[ident] += len(frame)
                index += 1
                if not delay and index % 32 == 0:
                    await asyncio.sleep(0)
            await self._write(_chunk(ending(chunks)) + b"0\r\n\r\n")
        except (ConnectionError, asyncio.CancelledError):
            self.stats.cut[ident] = time.monotonic()  # for soak figures only
        finally:
            self.stats.open_streams -= 1
            self.task = None


async def serve(port: int, sndbuf: int | None) -> None:
    """Serve until killed."""
    stats = Stats()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Conn(stats, sndbuf), "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


def main() -> None:
    """Command line: the port, and optionally SO_SNDBUF for every connection."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--sndbuf", type=int, default=None)
    args = parser.parse_args()
    with contextlib.suppress(ImportError):  # the uvloop extra: the fake costs less CPU
        import uvloop

        uvloop.install()
    asyncio.run(serve(args.port, args.sndbuf))


if __name__ == "__main__":
    main()
