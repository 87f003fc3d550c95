"""A scripted fake provider: replays recordings, injects faults, and observes disconnects.

Each request takes the next queued Scenario (or the default one). Every request is recorded
with its path, headers and JSON body; every client disconnect the server notices is stamped
(`tests.support.clock.stamp`: to order events or print a figure, never held to a bound in make
test).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.support.clock import stamp
from tests.support.ports import free_port
from tests.support.recordings import Recording


@dataclass
class Scenario:
    """How the fake answers one request."""

    recording: Recording | None = None
    status: int = 200
    body: bytes | None = None  # a whole body (overrides the recording)
    frames: list[bytes] | None = None  # stream frames (override the recording)
    headers: dict[str, str] = field(default_factory=dict)
    delay_headers: float = 0.0  # before the status line
    hold: asyncio.Event | None = None  # before the status line: answer once the test sets it
    delay_chunks: float = 0.0  # between two frames
    reset_after: int | None = None  # abort the TCP connection after this many frames
    reset_before: bool = False  # abort the TCP connection instead of answering (no status line)
    endless: bool = False  # keep sending frames forever
    endless_frame: bytes = b'data: {"choices":[{"index":0,"delta":{"content":"x"}}]}\n\n'
    content_type: str | None = None
    # SO_SNDBUF for this answer's socket: a remote provider's kernel buffer, not loopback's
    # megabytes, so what piles up between the fake and the client is the gateway's doing.
    sndbuf: int | None = None


@dataclass
class Seen:
    """One request the fake received."""

    path: str
    headers: dict[str, str]
    body: Any
    raw: bytes
    at: float
    sent: int = 0  # stream bytes written so far
    last_write: float = 0.0  # when the last frame was handed to the socket
    disconnected_at: float | None = None  # when the fake noticed the client leave


class FakeUpstream:
    """The fake provider's state and server."""

    def __init__(self) -> None:
        self.queue: deque[Scenario] = deque()
        self.default = Scenario(body=b'{"error":{"message":"no scenario queued"}}', status=500)
        self.by_path: dict[str, Scenario] = {}  # with nothing queued: the scenario for a path
        self.requests: list[Seen] = []
        self.disconnects: list[float] = []
        self.open_streams = 0
        self.active = 0  # requests being answered now
        self.peak_active = 0
        self.port = free_port()
        self._runner: web.AppRunner | None = None
        # Checks a request's credentials as the provider would (a SigV4 signature, a bearer it
        # issued): a message refuses it with 403, None lets the scenario answer.
        self.authorize: Callable[[web.Request, bytes], str | None] | None = None

    @property
    def url(self) -> str:
        """Base URL (no /v1)."""
        return f"http://127.0.0.1:{self.port}"

    def push(self, *scenarios: Scenario) -> None:
        """Queue scenarios for the next requests, in order."""
        self.queue.extend(scenarios)

    async def start(self) -> FakeUpstream:
        """Serve on the free port."""
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        seen = Seen(request.path_qs, dict(request.headers), body, raw, stamp())
        self.requests.append(seen)
        refused = self.authorize(request, raw) if self.authorize is not None else None
        if refused is not None:
            return web.json_response({"message": refused}, status=403)
        if self.queue:
            scenario = self.queue.popleft()
        else:
            scenario = self.by_path.get(request.path, self.default)
        self.active += 1
        self.peak_active = max(self.peak_active, self.active)
        try:
            if scenario.hold is not None:
                await scenario.hold.wait()
            if scenario.delay_headers:
                await asyncio.sleep(scenario.delay_headers)
            if scenario.reset_before and request.transport is not None:
                request.transport.abort()
                raise ConnectionResetError("scripted reset before the status line")
            return await self._answer(request, scenario, seen)
        except (asyncio.CancelledError, ConnectionResetError):
            seen.disconnected_at = stamp()
            self.disconnects.append(seen.disconnected_at)
            raise
        finally:
            self.active -= 1

    async def _answer(self, request: web.Request, sc: Scenario, seen: Seen) -> web.StreamResponse:
        rec = sc.recording
        streamed = sc.frames is not None or sc.endless or (rec is not None and rec.streamed)
        if sc.body is not None or not streamed:
            body = sc.body if sc.body is not None else (rec.wire() if rec else b"{}")
            return web.Response(
                status=sc.status,
                body=body,
                headers=sc.headers,
                content_type=sc.content_type or "application/json",
            )
        frames = sc.frames if sc.frames is not None else (rec.frames() if rec else [])
        response = web.StreamResponse(status=sc.status, headers=sc.headers)
        response.content_type = sc.content_type or "text/event-stream"
        if sc.sndbuf is not None and request.transport is not None:
            sock = request.transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sc.sndbuf)
        await response.prepare(request)
        self.open_streams += 1
        try:
            sent = 0
            for frame in frames:
                await self._frame(request, response, sc, frame, sent, seen)
                sent += 1
            while sc.endless:
                await self._frame(request, response, sc, sc.endless_frame, sent, seen)
                sent += 1
            await response.write_eof()
        finally:
            self.open_streams -= 1
        return response

    async def _frame(
        self,
        request: web.Request,
        response: web.StreamResponse,
        sc: Scenario,
        frame: bytes,
        n: int,
        seen: Seen,
    ) -> None:
        if sc.reset_after is not None and n >= sc.reset_after:
            assert request.transport is not None
            request.transport.abort()
            raise ConnectionResetError("scripted reset")
        if sc.delay_chunks and n:
            await asyncio.sleep(sc.delay_chunks)
        await response.write(frame)
        seen.sent += len(frame)
        seen.last_write = stamp()
        if sc.endless and n % 64 == 0:
            await asyncio.sleep(0)


@contextlib.asynccontextmanager
async def running_fake() -> Any:
    """A started fake upstream for the duration of the block."""
    fake = await FakeUpstream().start()
    try:
        yield fake
    finally:
        await fake.stop()
