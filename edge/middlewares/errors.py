"""Outermost middleware: request id in and out, the one place errors become responses, and the
request's log line."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time

from aiohttp import web
from aiohttp.typedefs import Handler

from edge.appkeys import METRICS
from edge.context import RequestContext, attach
from edge.errors import BODY_TOO_LARGE, GatewayError, error_response
from edge.logs import log_request
from edge.metrics import note_error
from edge.route_table import facts_of, supported_routes
from edge.shutdown import begin_request, end_request, finish_response, refuse_when_stopping
from edge.store import StoreUnavailable

log = logging.getLogger("edge.errors")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}\Z")
_HTTP_MESSAGES = {404: "Not found", 405: "Method not allowed"}
STORE_DOWN = GatewayError(
    503,
    "The gateway's store is unavailable. Retry shortly.",
    code="store_unavailable",
    headers={"Retry-After": "1"},
)
INTERNAL = GatewayError(500, "The gateway failed to process the request.", code="internal_error")


def _request_id(request: web.Request) -> str:
    incoming = request.headers.get("x-request-id")
    # A caller's id is kept only when it is short and printable: it goes into logs and headers.
    if incoming and _REQUEST_ID.match(incoming):
        return incoming
    return "req_" + os.urandom(16).hex()  # as unique as a uuid4, without building one


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> GatewayError:
    if exc.status == 413:
        return GatewayError(413, BODY_TOO_LARGE, code="request_too_large", close=True)
    message = _HTTP_MESSAGES.get(exc.status) or exc.reason or "Request failed"
    if exc.status == 404:
        routes = supported_routes(request)
        served = f" Routes under this prefix: {'; '.join(routes)}." if routes else ""
        message = f"No route for {request.method} {request.path[:200]}.{served}"
        return GatewayError(404, message, code="route_not_found", retry=False)
    headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
    return GatewayError(exc.status, message, headers=headers)


def _route(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


async def _respond(
    request: web.Request, ctx: RequestContext, handler: Handler
) -> web.StreamResponse:
    try:
        refuse_when_stopping(request)
        return await handler(request)
    except GatewayError as err:
        note_error(ctx, err)
        return error_response(ctx.shape, err, ctx.request_id)
    except StoreUnavailable:
        # A store failure no caller mapped (e.g. a pooled connection Redis closed when it
        # restarted) is the store being away, not a fault of ours.
        return error_response(ctx.shape, STORE_DOWN, ctx.request_id)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(ctx.shape, _from_http_exception(request, exc), ctx.request_id)
    except (ConnectionResetError, asyncio.CancelledError):
        raise  # the client went away: nothing to answer
    except Exception:  # the last line of defence: log it, never show a traceback
        log.exception("unhandled error", extra={"request_id": ctx.request_id})
        return error_response(ctx.shape, INTERNAL, ctx.request_id)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Attach the request context; render every failure in the caller's API shape."""
    ctx = RequestContext(request_id=_request_id(request), shape=facts_of(request).shape)
    attach(request, ctx)
    route = _route(request)
    flight = begin_request(request, ctx, route)
    try:
        response = await _respond(request, ctx, handler)
        if not response.prepared:
            finish_response(request, response)
            response.headers["x-request-id"] = ctx.request_id
            for name, value in ctx.response_headers.items():
                response.headers.setdefault(name, value)
        ctx.status = response.status
        return response
    except (ConnectionResetError, asyncio.CancelledError):
        ctx.status = ctx.status or 499  # client closed the request
        raise
    finally:
        end_request(request, flight)
        log_request(ctx, request.method, route)
        record_request(request, ctx, route)


def record_request(request: web.Request, ctx: RequestContext, route: str) -> None:
    """Record a finished request in the app's metrics."""
    metrics = request.app.get(METRICS)
    if metrics is not None:
        metrics.observe(ctx, route, time.perf_counter() - ctx.started)
