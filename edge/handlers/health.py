"""Liveness and readiness."""

from __future__ import annotations

from aiohttp import web

from edge.appkeys import LIFECYCLE, STORE

# On the metrics port's own application: the gateway whose state its probes and scrape report.
GATEWAY: web.AppKey[web.Application] = web.AppKey("edge.gateway", web.Application)


def gateway_of(request: web.Request) -> web.Application:
    """The gateway a request asks about: its own application, or the one a metrics port serves."""
    gateway = request.app.get(GATEWAY)
    return request.app if gateway is None else gateway


async def healthz(request: web.Request) -> web.Response:
    """Alive: answers without touching the store."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready: the store answers and the process is not draining."""
    gateway = gateway_of(request)
    if gateway[LIFECYCLE].draining:
        return web.json_response({"status": "draining"}, status=503)
    if not await gateway[STORE].ping():
        return web.json_response({"status": "store unavailable"}, status=503)
    return web.json_response({"status": "ready"})
