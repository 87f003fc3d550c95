"""Running the gateway: the C HTTP parser, explicit header limits, handler cancellation, a store
check before listening, /metrics and the probes on a port of their own, and the graceful
shutdown sequence on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import http_parser, web

from edge import __version__
from edge.app import create_app
from edge.appkeys import SETTINGS, STORE
from edge.connection import EdgeRunner
from edge.handlers.metrics import create_metrics_app
from edge.settings import Settings
from edge.shutdown import drain
from edge.store import Store

log = logging.getLogger("edge.server")

# Explicit request-head limits (aiohttp's defaults, stated so they cannot drift).
MAX_LINE_SIZE = 8190
MAX_FIELD_SIZE = 8190
MAX_HEADERS = 128
# After our own drain has waited for requests, what is left gets this long before cancellation.
CLEANUP_TIMEOUT = 2.0


class StartupError(RuntimeError):
    """The gateway cannot start; the message says why."""


def listen_error(host: str, port: int, exc: OSError, what: str = "") -> StartupError:
    """Why this process cannot listen on host:port, in the words an operator looks for."""
    named = f" ({what})" if what else ""
    if exc.errno == errno.EADDRINUSE:
        return StartupError(
            f"address already in use: {host}:{port}{named} "
            "(another process listens there; only `edge serve --workers N` shares a port)"
        )
    return StartupError(f"cannot listen on {host}:{port}{named}: {exc}")


async def claim_port(host: str, port: int, what: str = "") -> None:
    """StartupError if host:port is taken: checked at once, before anything slower."""
    # Bound without SO_REUSEPORT, the probe fails on any listener, a --workers group's
    # included; it never listens and is closed at once, so it leaves nothing behind.
    loop = asyncio.get_running_loop()
    try:
        probe = await loop.create_server(
            asyncio.Protocol, host, port, reuse_port=False, start_serving=False
        )
    except OSError as exc:
        raise listen_error(host, port, exc, what) from exc
    probe.close()
    await probe.wait_closed()


async def claim_ports(host: str, port: int, metrics_port: int | None) -> None:
    """StartupError if the client port, or the metrics port, is taken."""
    await claim_port(host, port)
    if metrics_port is not None:
        await claim_port(host, metrics_port, "the metrics port")


def require_c_parser() -> None:
    """Refuse to run on aiohttp's pure-Python HTTP parser: slower and more lenient."""
    parser = getattr(http_parser, "HttpRequestParser", None)
    if parser is None or parser.__module__ != "aiohttp._http_parser":
        raise SystemExit(
            "edge needs aiohttp's C HTTP parser (unset AIOHTTP_NO_EXTENSIONS and install a "
            "binary aiohttp wheel)"
        )


def make_runner(app: web.Application, shutdown_timeout: float = 30.0) -> web.AppRunner:
    """A runner with the server settings edge relies on."""
    settings = app[SETTINGS]
    return EdgeRunner(
        app,
        head_timeout=settings.guards.header_timeout,
        secrets=settings.secret_values,
        keepalive_timeout=settings.guards.keepalive_timeout,
        handler_cancellation=True,  # a client that leaves cancels its handler and upstream call
        access_log=None,  # edge writes its own JSON line per request
        max_line_size=MAX_LINE_SIZE,
        max_field_size=MAX_FIELD_SIZE,
        max_headers=MAX_HEADERS,
        shutdown_timeout=shutdown_timeout,
        # Bodies are inflated by edge.inflate, bounded by the body limit, and only when read:
        # aiohttp's decoder inflated whatever it read, unread bodies of refused requests too.
        auto_decompress=False,
    )


# Collections: young objects before a young pass, young passes per middle, middle per full.
GC_THRESHOLDS = (7000, 20, 20)


def describe_store(url: str) -> str:
    """The store URL without credentials, for logs and messages."""
    parts = urlsplit(url)
    if parts.scheme == "memory":
        return "memory://"
    # Sentinel and cluster URLs name several hosts: keep them all, drop only the user part.
    hosts = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{hosts}{parts.path}"


async def wait_for_store(store: Store, url: str, limit: float) -> None:
    """Ping the store until it answers, backing off; StartupError once `limit` seconds pass."""
    deadline = time.monotonic() + limit
    delay, attempts = 0.1, 0
    while True:
        attempts += 1
        if await store.ping():
            return
        left = deadline - time.monotonic()
        if left <= 0:
            raise StartupError(
                f"the store at {describe_store(url)} did not answer after {attempts} attempts "
                f"in {limit:g}s (check EDGE_STORE_URL and that Redis is running)"
            )
        log.warning(
            "store not reachable yet, retrying",
            extra={"fields": {"store": describe_store(url), "attempt": attempts}},
        )
        await asyncio.sleep(min(delay, left))
        delay = min(delay * 2, 1.0)


def _install_signals(stop: asyncio.Event, hurry: asyncio.Event, skip_grace: asyncio.Event) -> None:
    """First SIGTERM/SIGINT starts the graceful shutdown; a second one hurries it.

    SIGINT is someone at a terminal, not a load balancer: it skips the grace period.
    """
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        fields = {"fields": {"signal": sig.name}}
        if stop.is_set():
            log.warning("second signal: ending open streams now", extra=fields)
            hurry.set()
        else:
            log.info("signal received", extra=fields)
            if sig == signal.SIGINT:
                skip_grace.set()
            stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, on_signal, sig)


async def serve(
    settings: Settings,
    on_started: Callable[[web.Application], Awaitable[None]] | None = None,
    *,
    shared_port: bool = False,
) -> None:
    """Serve until SIGINT or SIGTERM, then drain and stop."""
    require_c_parser()
    stop, hurry, skip_grace = asyncio.Event(), asyncio.Event(), asyncio.Event()
    _install_signals(stop, hurry, skip_grace)
    fields = {
        "version": __version__,
        "pid": os.getpid(),
        "store": describe_store(settings.store_url),
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
    }
    log.info("starting", extra={"fields": fields})
    # Only a worker of `edge serve --workers N` shares its ports (SO_REUSEPORT): a lone gateway
    # on a busy port fails here rather than have the kernel split connections with another.
    if not shared_port:
        await claim_ports(settings.host, settings.port, settings.metrics_port)
    app = create_app(settings)
    runner = make_runner(app, shutdown_timeout=CLEANUP_TIMEOUT)
    metrics_runner: web.AppRunner | None = None
    await runner.setup()
    try:
        await wait_for_store(app[STORE], settings.store_url, settings.store_startup_timeout)
        reuse_port = shared_port and sys.platform != "win32"
        await _listen(runner, settings.host, settings.port, reuse_port)
        # The probes answer ready only once the client port listens: it is started first.
        if settings.metrics_port is not None:
            metrics_runner = make_runner(create_metrics_app(app), shutdown_timeout=0.5)
            await metrics_runner.setup()
            await _listen(
                metrics_runner, settings.host, settings.metrics_port, reuse_port, "the metrics port"
            )
        listening: dict[str, object] = {"host": settings.host, "port": settings.port}
        listening["metrics_port"] = settings.metrics_port or settings.port
        # What start-up built (modules, the catalog, compiled scripts, the app) lives as long as
        # the process: out of the collector's sight, a full collection under load walks only
        # the requests' objects, and its pauses stay short.
        gc.collect()
        gc.freeze()
        listening["gc_frozen"] = gc.get_freeze_count()
        # A request allocates hundreds of tracked objects that reference counting frees: at the
        # default 700 a young collection ran every few requests, each walking the objects of
        # every request in flight (at 50 in flight, ~9% of the CPU per request).
        gc.set_threshold(*GC_THRESHOLDS)
        listening["gc_thresholds"] = list(gc.get_threshold())
        log.info("listening", extra={"fields": listening})
        if on_started is not None:
            await on_started(app)
        await stop.wait()
        await drain(app, hurry, grace=0.0 if skip_grace.is_set() else None)
    finally:
        await runner.cleanup()
        # Last: scrapes and probes answer (readiness 503) for as long as the gateway drains.
        if metrics_runner is not None:
            await metrics_runner.cleanup()
        log.info("stopped", extra={"fields": {"pid": os.getpid()}})


async def _listen(
    runner: web.AppRunner, host: str, port: int, reuse_port: bool, what: str = ""
) -> None:
    """Start serving the runner's application on host:port."""
    site = web.TCPSite(runner, host, port, reuse_port=reuse_port)
    try:
        await site.start()
    except OSError as exc:
        raise listen_error(host, port, exc, what) from exc
