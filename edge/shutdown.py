"""Graceful shutdown: not ready at once, serve through a grace period, then refuse new work, let
open streams finish, and end the ones still open at the deadline with `server_shutdown`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiohttp import web

from edge.appkeys import LIFECYCLE, SETTINGS
from edge.context import RequestContext
from edge.errors import GatewayError
from edge.lifecycle import Flight, InFlight, Lifecycle, TerminalWriter
from edge.route_table import facts_of

log = logging.getLogger("edge.shutdown")

# Refused before any work was done, so a retry elsewhere is always safe.
REFUSED = GatewayError(
    503,
    "The gateway is shutting down; retry the request.",
    code="server_shutdown",
    headers={"Retry-After": "1"},
    close=True,
)
# The terminal event of a stream still open at the shutdown deadline.
CUT = GatewayError(503, "The gateway shut down before the stream finished.", code="server_shutdown")
_FLIGHT = "edge.flight"


def begin_request(request: web.Request, ctx: RequestContext, route: str) -> Flight:
    """Track a request until `end_request`."""
    flight = request.app[LIFECYCLE].inflight.begin(route)
    ctx.extra[_FLIGHT] = flight
    return flight


def refuse_when_stopping(request: web.Request) -> None:
    """Past the grace period, refuse new work (probes and scrapes still answer)."""
    # Probes and the scrape still answer while refusing: they tell the platform how it goes.
    if request.app[LIFECYCLE].refusing and not facts_of(request).always_answered:
        raise REFUSED


def finish_response(request: web.Request, response: web.StreamResponse) -> None:
    """While draining, close connections after each answer so clients reconnect elsewhere."""
    if request.app[LIFECYCLE].draining:
        response.force_close()


def end_request(request: web.Request, flight: Flight) -> None:
    """The request is over."""
    request.app[LIFECYCLE].inflight.end(flight)


def track_stream(
    request: web.Request,
    ctx: RequestContext,
    response: web.StreamResponse,
    terminal: TerminalWriter | None,
) -> None:
    """Register a prepared stream with the writer of its API's terminal error event."""
    flight = ctx.extra.get(_FLIGHT)
    if isinstance(flight, Flight):
        request.app[LIFECYCLE].inflight.streaming(flight, response, terminal)


async def cut_streams(inflight: InFlight) -> int:
    """End every open stream with its terminal `server_shutdown` event; returns how many."""
    cut = 0
    for flight in inflight.streams():
        response = flight.response
        assert response is not None
        # Cancel first: the handler cannot write again before this task yields, and the
        # terminal event and end of body go out together in one write below.
        if flight.task is not None:
            flight.task.cancel()
        flight.cut = True
        if flight.terminal is None:
            continue
        with contextlib.suppress(ConnectionError, RuntimeError):
            await response.write_eof(flight.terminal(CUT))
        cut += 1
    return cut


async def _run_hooks(lifecycle: Lifecycle, limit: float) -> None:
    hooks = [hook() for hook in lifecycle.on_drain]
    if not hooks:
        return
    try:
        async with asyncio.timeout(limit):
            results = await asyncio.gather(*hooks, return_exceptions=True)
    except TimeoutError:
        log.warning("drain hooks did not finish in time")
        return
    for result in results:
        if isinstance(result, BaseException):
            log.error("drain hook failed: %r", result)


async def _wait(hurry: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, or less if a second signal asks to hurry."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await hurry.wait()


async def drain(app: web.Application, hurry: asyncio.Event, grace: float | None = None) -> None:
    """Run the shutdown sequence; returns when the app may be cleaned up."""
    settings, lifecycle = app[SETTINGS], app[LIFECYCLE]
    grace = settings.shutdown.grace if grace is None else grace
    started = time.monotonic()
    lifecycle.draining = True
    log.info(
        "draining",
        extra={
            "fields": {
                "grace_s": grace,
                "timeout_s": settings.shutdown.timeout,
                "in_flight": len(lifecycle.inflight),
            }
        },
    )
    hooks = asyncio.ensure_future(_run_hooks(lifecycle, grace + settings.shutdown.timeout))
    await _wait(hurry, grace)
    lifecycle.refusing = True
    log.info("refusing new requests", extra={"fields": {"in_flight": len(lifecycle.inflight)}})
    idle = False
    if not hurry.is_set():
        idle = await _until_idle(lifecycle.inflight, hurry, settings.shutdown.timeout)
    if not idle:
        cut = await cut_streams(lifecycle.inflight)
        log.warning("shutdown deadline reached", extra={"fields": {"streams_cut": cut}})
    await hooks
    log.info("drained", extra={"fields": {"seconds": round(time.monotonic() - started, 3)}})


async def _until_idle(inflight: InFlight, hurry: asyncio.Event, limit: float) -> bool:
    """Wait for every request to end; False at the deadline or on a second signal."""
    idle = asyncio.ensure_future(inflight.wait_idle())
    hurried = asyncio.ensure_future(hurry.wait())
    done, _ = await asyncio.wait(
        (idle, hurried), timeout=limit, return_when=asyncio.FIRST_COMPLETED
    )
    idle.cancel()
    hurried.cancel()
    return idle in done
