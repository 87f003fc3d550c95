"""GET /metrics: Prometheus text format, optionally behind a bearer token."""

from __future__ import annotations

import hmac

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from edge.appkeys import LIFECYCLE, METRICS, SETTINGS
from edge.errors import GatewayError
from edge.route_table import PROBE, declare

METRICS_PATH = "/metrics"


def _authorized(request: web.Request, token: str) -> bool:
    given = request.headers.get("Authorization", "")
    expected = f"Bearer {token}"
    return hmac.compare_digest(given.encode(), expected.encode())


async def metrics(request: web.Request) -> web.Response:
    """The scrape: every series of this process (or of every worker, in multiprocess mode)."""
    token = request.app[SETTINGS].metrics_token
    if token is not None and not _authorized(request, token):
        raise GatewayError(
            401, "Invalid metrics credentials", code="invalid_api_key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    registry = request.app[METRICS]
    registry.draining.set(1 if request.app[LIFECYCLE].draining else 0)
    return web.Response(body=registry.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def setup_metrics(app: web.Application) -> None:
    """Register the scrape route."""
    declare(app, "GET", METRICS_PATH, metrics, PROBE)
