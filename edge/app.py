"""The aiohttp application: state, lifecycles, middlewares and routes."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

from aiohttp import web

from edge.admin.routes import setup_admin
from edge.appkeys import (
    AUTHENTICATOR,
    HTTP,
    IDENTITY,
    LIFECYCLE,
    METRICS,
    QUOTA,
    SETTINGS,
    STORE,
    TRACING,
)
from edge.auth.authenticate import Authenticator
from edge.auth.jwks import JwksCache
from edge.balancer import BALANCER, Balancer
from edge.budget_alerts import BudgetAlerts
from edge.deployment_metrics import DeploymentMetrics
from edge.handlers.metrics import setup_metrics
from edge.handlers.routes import setup_inference
from edge.identity_cache import IdentityCache
from edge.lifecycle import Lifecycle
from edge.limits_parse import install as install_parse_slots
from edge.metrics import FallbackSource, Metrics
from edge.middlewares import CHAIN
from edge.middlewares.quota import quota_headers
from edge.quota.service import QuotaService
from edge.responses.worker import background_ctx
from edge.settings import Settings
from edge.store import open_store
from edge.tracing import tracing_from_env
from edge.upstream.client import make_session
from edge.upstream.signing import CREDENTIALS, ProviderCredentials

# Settlements are bounded by the Redis client timeouts; this only caps a pathological wait.
SETTLE_GRACE = 5.0


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    async with open_store(settings.store_url, settings.redis_timeout) as store:
        app[STORE] = store
        app[IDENTITY] = IdentityCache(store)
        app[QUOTA] = QuotaService(
            store, app[IDENTITY], settings.catalog, settings.quota, settings.redis_timeout
        )
        for source in (store, app[IDENTITY], app[QUOTA]):
            if isinstance(source, FallbackSource):
                app[METRICS].watch_fallbacks(source)
        app[BALANCER] = Balancer(
            store.deployments, DeploymentMetrics(app[METRICS].registry), store.invalidation
        )
        yield
        await app[BALANCER].close()
        # Every handler has returned by now (this context is cleaned up last); what they left
        # to settle in the background is written before the store closes, and so are the
        # request-rate leases given back.
        await app[QUOTA].close()
        await app[QUOTA].wait_settled(SETTLE_GRACE)


async def _http_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    session = make_session(settings.timeouts)
    app[HTTP] = session
    alerts = BudgetAlerts(
        app[QUOTA],
        app[IDENTITY],
        app[METRICS],
        session,
        settings.alert_webhook_url,
        settings.alert_webhook_secret,
    )
    app[QUOTA].after_settle(alerts.check)
    app[AUTHENTICATOR] = Authenticator(
        identity=app[IDENTITY],
        server_secret=settings.hmac_secret,
        issuers=settings.issuers,
        jwks=JwksCache(session),
        admin_token=settings.admin_token,
    )
    yield
    await alerts.close()
    await session.close()


async def _tracing_ctx(app: web.Application) -> AsyncIterator[None]:
    # OpenTelemetry's exporter is configured by the OTEL_* variables of the process.
    app[TRACING] = tracing_from_env(os.environ)
    yield
    # Last, and off the event loop (it waits for the exporter): the spans of requests that
    # just ended are sent too.
    await asyncio.to_thread(app[TRACING].shutdown)


async def _server_header(request: web.Request, response: web.StreamResponse) -> None:
    # aiohttp's default names the Python and aiohttp versions: nothing a client needs to know.
    response.headers["Server"] = "edge"


def create_app(settings: Settings) -> web.Application:
    """Build the gateway application for the given settings."""
    app = web.Application(middlewares=CHAIN, client_max_size=settings.body_limit)
    app[SETTINGS] = settings
    app[LIFECYCLE] = Lifecycle()
    app[CREDENTIALS] = ProviderCredentials()  # Bedrock and Vertex signers, made at first use
    app[METRICS] = Metrics(settings.metrics_dir)
    install_parse_slots(app)  # large bodies are read and parsed a few at a time per process
    app[LIFECYCLE].inflight.on_stream = app[METRICS].stream_delta
    app.cleanup_ctx.append(_tracing_ctx)
    app.cleanup_ctx.append(_store_ctx)
    app.cleanup_ctx.append(_http_ctx)
    app.cleanup_ctx.append(background_ctx)
    app.on_response_prepare.append(quota_headers)
    app.on_response_prepare.append(_server_header)
    setup_inference(app)
    setup_admin(app)
    setup_metrics(app)
    return app
