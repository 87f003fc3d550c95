"""The middleware chain, outermost first: errors and request id, trace context, load shedding,
body limit, authentication, branch binding, quota."""

from __future__ import annotations

from aiohttp.typedefs import Middleware

from edge.middlewares.auth import auth_middleware
from edge.middlewares.body_limit import body_limit_middleware
from edge.middlewares.branch import branch_middleware
from edge.middlewares.errors import errors_middleware
from edge.middlewares.load_shedding import load_shedding_middleware
from edge.middlewares.quota import quota_middleware
from edge.middlewares.tracing import tracing_middleware

CHAIN: tuple[Middleware, ...] = (
    errors_middleware,
    tracing_middleware,
    load_shedding_middleware,
    body_limit_middleware,
    auth_middleware,
    branch_middleware,
    quota_middleware,
)
