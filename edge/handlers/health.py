"""Liveness and readiness."""

from __future__ import annotations

from aiohttp import web

from edge.appkeys import LIFECYCLE, STORE


async def healthz(request: web.Request) -> web.Response:
    """Alive: answers without touching the store."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready: the store answers and the process is not draining."""
    if request.app[LIFECYCLE].draining:
        return web.json_response({"status": "draining"}, status=503)
    if not await request.app[STORE].ping():
        return web.json_response({"status": "store unavailable"}, status=503)
    return web.json_response({"status": "ready"})
