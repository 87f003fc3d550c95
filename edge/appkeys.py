"""Typed application state: every long-lived object the handlers share."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

from edge.lifecycle import Lifecycle
from edge.settings import Settings
from edge.tracing import Tracing

if TYPE_CHECKING:
    from edge.auth.authenticate import Authenticator
    from edge.identity_cache import IdentityCache
    from edge.metrics import Metrics
    from edge.quota.service import QuotaService
    from edge.store import Store

SETTINGS = web.AppKey("settings", Settings)
LIFECYCLE = web.AppKey("lifecycle", Lifecycle)
STORE: web.AppKey[Store] = web.AppKey("store")
IDENTITY: web.AppKey[IdentityCache] = web.AppKey("identity")
AUTHENTICATOR: web.AppKey[Authenticator] = web.AppKey("authenticator")
QUOTA: web.AppKey[QuotaService] = web.AppKey("quota")
HTTP: web.AppKey[aiohttp.ClientSession] = web.AppKey("http")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
TRACING = web.AppKey("tracing", Tracing)
