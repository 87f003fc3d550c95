"""Process lifecycle state: draining for shutdown, the requests in flight, and drain hooks."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiohttp import web

    from edge.errors import GatewayError

# A stream path's terminal error event, in its client API's shape.
TerminalWriter = Callable[["GatewayError"], bytes]
# Called when the process starts draining (e.g. background workers release their jobs).
DrainHook = Callable[[], Awaitable[None]]


@dataclass(slots=True, eq=False)
class Flight:
    """One request in progress; a stream once its response is prepared."""

    route: str
    task: asyncio.Task[Any] | None
    response: web.StreamResponse | None = None
    terminal: TerminalWriter | None = None
    cut: bool = False  # ended by the shutdown deadline with a `server_shutdown` event


class InFlight:
    """The requests this process is serving, so shutdown can wait for them or end them."""

    def __init__(self) -> None:
        self._flights: set[Flight] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        # Told +1/-1 with the route when a stream opens or closes (the open-streams gauge).
        self.on_stream: Callable[[str, int], None] | None = None

    def __len__(self) -> int:
        return len(self._flights)

    def begin(self, route: str) -> Flight:
        """Track a request from its start."""
        flight = Flight(route=route, task=asyncio.current_task())
        self._flights.add(flight)
        self._idle.clear()
        return flight

    def streaming(
        self, flight: Flight, response: web.StreamResponse, terminal: TerminalWriter | None
    ) -> None:
        """The request has started a stream; `terminal` ends it early in its API's shape."""
        flight.response = response
        flight.terminal = terminal
        if self.on_stream is not None:
            self.on_stream(flight.route, 1)

    def end(self, flight: Flight) -> None:
        """The request is over (whatever the outcome)."""
        if flight not in self._flights:
            return
        self._flights.discard(flight)
        if flight.response is not None and self.on_stream is not None:
            self.on_stream(flight.route, -1)
        if not self._flights:
            self._idle.set()

    def streams(self) -> list[Flight]:
        """The flights that are open streams."""
        return [f for f in self._flights if f.response is not None]

    async def wait_idle(self) -> None:
        """Wait until nothing is in flight."""
        await self._idle.wait()


@dataclass(slots=True)
class Lifecycle:
    """Per-process lifecycle state, owned by the app."""

    draining: bool = False  # SIGTERM received: /readyz answers 503
    refusing: bool = False  # past the grace period: new requests are refused
    inflight: InFlight = field(default_factory=InFlight)
    on_drain: list[DrainHook] = field(default_factory=list)
