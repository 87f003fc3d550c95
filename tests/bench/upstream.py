"""The fast fake upstream: a raw asyncio HTTP/1.1 protocol (uvloop when installed).

Serves POST /v1/chat/completions, /v1/responses and /v1/messages, streamed (`"stream": true`
in the body) or not, with rate-limit headers a provider would send. `POST /_bench/shape`
with `{"body_bytes", "chunks", "delay"}` changes the answers for the requests that follow.

    python -m tests.bench.upstream --port 9000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import signal
from typing import cast

import orjson

from tests.bench.limits import raise_fd_limit
from tests.bench.payloads import APIS, LAST_CHUNK, PATHS, Api, Shape, chunked, stream_events
from tests.bench.payloads import whole_body as render_body

_STREAM = re.compile(rb'"stream"\s*:\s*true')
_USAGE = re.compile(rb'"include_usage"\s*:\s*true')
_RATE_HEADERS = (
    b"x-ratelimit-limit-requests: 10000\r\n"
    b"x-ratelimit-remaining-requests: 9999\r\n"
    b"x-ratelimit-reset-requests: 6ms\r\n"
)


class Answers:
    """Pre-rendered wire bytes for the current shape."""

    def __init__(self, shape: Shape) -> None:
        self.shape = shape
        self.whole: dict[Api, bytes] = {}
        self.stream: dict[tuple[Api, bool], list[bytes]] = {}
        self.stream_head = (
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
            b"Cache-Control: no-cache\r\n" + _RATE_HEADERS + b"Transfer-Encoding: chunked\r\n\r\n"
        )
        for api in APIS:
            body = render_body(api, shape.body_bytes)
            self.whole[api] = (
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                + _RATE_HEADERS
                + b"Content-Length: %d\r\n\r\n" % len(body)
                + body
            )
            for usage in (False, True):
                events = stream_events(api, shape.chunks, include_usage=usage)
                frames = [chunked(e) for e in events]
                frames[-1] += LAST_CHUNK
                self.stream[(api, usage)] = frames


def _simple(status: bytes, body: bytes) -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body) + body
    )


NOT_FOUND = _simple(b"404 Not Found", b'{"error":{"message":"not found"}}')


class UpstreamProtocol(asyncio.Protocol):
    """One client connection: keep-alive, Content-Length request bodies."""

    server: Server

    def __init__(self, server: Server) -> None:
        self.server = server
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        if self.task is not None:
            self.task.cancel()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while self.task is None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end])
            length = _content_length(head)
            total = end + 4 + length
            if len(self.buf) < total:
                return
            body = bytes(self.buf[end + 4 : total])
            del self.buf[:total]
            self._answer(head, body)

    def _answer(self, head: bytes, body: bytes) -> None:
        assert self.transport is not None
        line = head[: head.find(b"\r\n")] if b"\r\n" in head else head
        parts = line.split(b" ")
        path = parts[1].split(b"?", 1)[0] if len(parts) > 1 else b""
        self.server.requests += 1
        api = PATHS.get(path)
        if api is None:
            if path == b"/_bench/shape":
                self.server.reshape(Shape.from_json(orjson.loads(body)))
                self.transport.write(_simple(b"200 OK", b"{}"))
            else:
                self.transport.write(NOT_FOUND)
            return
        answers = self.server.answers
        if not _STREAM.search(body):
            self.transport.write(answers.whole[api])
            return
        frames = answers.stream[(api, api != "chat" or bool(_USAGE.search(body)))]
        if answers.shape.delay <= 0:
            self.transport.write(answers.stream_head + b"".join(frames))
            return
        self.task = asyncio.get_running_loop().create_task(
            self._paced(answers.stream_head, frames, answers.shape.delay)
        )

    async def _paced(self, head: bytes, frames: list[bytes], delay: float) -> None:
        try:
            assert self.transport is not None
            self.transport.write(head + frames[0])
            for frame in frames[1:]:
                await asyncio.sleep(delay)
                if self.transport is None or self.transport.is_closing():
                    return
                self.transport.write(frame)
        except asyncio.CancelledError:
            return
        finally:
            self.task = None
        if self.buf:
            self.data_received(b"")


def _content_length(head: bytes) -> int:
    at = head.lower().find(b"\r\ncontent-length:")
    if at < 0:
        return 0
    start = at + 17
    end = head.find(b"\r\n", start)
    return int(head[start : end if end >= 0 else len(head)].strip())


class Server:
    """The listening fake and its current answers."""

    def __init__(self, shape: Shape) -> None:
        self.answers = Answers(shape)
        self.requests = 0

    def reshape(self, shape: Shape) -> None:
        """Answer with a new shape from now on."""
        self.answers = Answers(shape)


async def serve(host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT."""
    state = Server(Shape())
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: UpstreamProtocol(state), host, port, backlog=4096)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def install_uvloop() -> bool:
    """Use uvloop when it is installed (the `uvloop` extra)."""
    try:
        import uvloop
    except ImportError:
        return False
    uvloop.install()
    return True


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    raise_fd_limit()
    install_uvloop()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
