"""Per-request state shared by the middlewares and the handler, and read by logs and metrics."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

from edge.errors import ApiShape, GatewayError
from edge.routing import Route
from policies.credentials import Principal

if TYPE_CHECKING:
    from edge.quota.reservation import Reservation
    from edge.usage import Usage


class Balancing(Protocol):
    """What answers a call over a model's deployments (`edge.balancer.Balancer`)."""

    async def serve(
        self,
        ctx: RequestContext,
        route: Route,
        attempt: Callable[[Route], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        """Answer with the route's deployments, retrying before the first byte only."""


@dataclass(slots=True)
class RequestContext:
    """What the gateway learned about one request as it moved through the chain."""

    request_id: str
    shape: ApiShape
    started: float = field(default_factory=time.perf_counter)
    principal: Principal | None = None
    branch: str | None = None
    body: bytes | None = None
    payload: Any = None  # the parsed JSON body
    model: str | None = None
    # A model call's resolved chain (the requested model first, then its fallbacks): resolved
    # once, before admission, and what the handler answers with.
    routes: list[Route] = field(default_factory=list)
    # A Responses call's stored transcript (`previous_response_id`), loaded before admission so
    # the estimate counts what goes upstream.
    history: list[dict[str, Any]] = field(default_factory=list)
    history_bytes: int = 0  # the transcript's size, counted in input estimates like the body
    provider: str | None = None
    stream: bool = False
    usage: Usage | None = None
    stream_events: int = 0  # events relayed to a streaming client
    first_byte_at: float | None = None
    status: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    # The error the request ended with (before or during its stream), for logs and metrics.
    error: GatewayError | None = None
    # Each model a fallback chain tried, in order, with the status it answered (0: none yet).
    attempts: list[tuple[str, int]] = field(default_factory=list)
    trace_id: str | None = None  # the W3C trace the request belongs to, when it has one
    reservation: Reservation | None = None  # set by the quota middleware when admitted
    reservation_detached: bool = False
    # Chooses among a model's deployments (set for model calls; None: each route as it is).
    balancer: Balancing | None = None
    # The deployment that answered, or the last one tried (logs, stored responses).
    deployment: str | None = None
    # The deployment holding the conversation's state upstream (`previous_response_id`).
    sticky: str | None = None

    def detach_reservation(self) -> Reservation | None:
        """Take the request's quota reservation over (a background run settles it later)."""
        self.reservation_detached = True
        return self.reservation

    @property
    def account(self) -> str | None:
        """The calling account, once authenticated."""
        return self.principal.account if self.principal else None

    def mark_first_byte(self) -> None:
        """Record time to first byte once."""
        if self.first_byte_at is None:
            self.first_byte_at = time.perf_counter()


_CTX: web.RequestKey[RequestContext] = web.RequestKey("edge.ctx")


def ctx_of(request: web.Request) -> RequestContext:
    """The request's context (set by the outermost middleware)."""
    return request[_CTX]


def attach(request: web.Request, ctx: RequestContext) -> None:
    """Attach a context to a request."""
    request[_CTX] = ctx
