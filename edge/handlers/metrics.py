"""GET /metrics: Prometheus text format, optionally behind a bearer token; and the application
that serves it with the probes on a port of its own (`edge serve --metrics-port`)."""

from __future__ import annotations

import hmac

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CONTENT_TYPE_LATEST

from edge.appkeys import LIFECYCLE, METRICS, SETTINGS
from edge.auth.authenticate import raw_bytes
from edge.errors import GatewayError, error_response
from edge.handlers.health import GATEWAY, gateway_of, healthz, readyz
from edge.route_table import PROBE, declare

METRICS_PATH = "/metrics"


def _authorized(request: web.Request, token: str) -> bool:
    # Compared as the bytes sent: a value that is not UTF-8 is simply not the token.
    given = request.headers.get("Authorization", "")
    return hmac.compare_digest(raw_bytes(given), raw_bytes(f"Bearer {token}"))


async def metrics(request: web.Request) -> web.Response:
    """The scrape: every series of this process (or of every worker, in multiprocess mode)."""
    gateway = gateway_of(request)
    token = gateway[SETTINGS].metrics_token
    if token is not None and not _authorized(request, token):
        raise GatewayError(
            401,
            "Invalid metrics credentials",
            code="invalid_api_key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    registry = gateway[METRICS]
    registry.draining.set(1 if gateway[LIFECYCLE].draining else 0)
    return web.Response(body=registry.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def setup_metrics(app: web.Application) -> None:
    """Register the scrape route on the client port, when no metrics port serves it."""
    if app[SETTINGS].metrics_port is None:
        declare(app, "GET", METRICS_PATH, metrics, PROBE)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The metrics port's errors, in the OpenAI shape its clients (scrapers, probes) get."""
    try:
        return await handler(request)
    except GatewayError as err:
        return error_response("openai", err)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = "Not found." if exc.status == 404 else exc.reason
        return error_response("openai", GatewayError(exc.status, message, code=None))


def create_metrics_app(gateway: web.Application) -> web.Application:
    """The metrics port's application: /metrics, /healthz and /readyz of `gateway`, nothing
    else. Its probes answer what the gateway's do (draining included); it needs no
    credentials beyond EDGE_METRICS_TOKEN, and counts in none of the gateway's limits."""
    app = web.Application(middlewares=[_errors], client_max_size=1024)
    app[GATEWAY] = gateway
    app[SETTINGS] = gateway[SETTINGS]
    app.router.add_get(METRICS_PATH, metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.on_response_prepare.append(_server_header)
    return app


async def _server_header(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["Server"] = "edge"
