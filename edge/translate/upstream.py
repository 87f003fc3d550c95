"""Calling a provider in neutral terms: one adapter per upstream wire API."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import aiohttp

from edge.errors import GatewayError
from edge.routing import Route
from edge.settings import Timeouts
from edge.translate import local_echo
from edge.translate import neutral as n
from edge.upstream.client import require_admitted

if TYPE_CHECKING:  # a type only: adapters stay clear of the quota store
    from edge.quota.reservation import Reservation
    from edge.upstream.signing import ProviderCredentials, Signer


NO_SIGNER = "This call cannot carry its provider's credentials."


@dataclass(slots=True)
class StreamCall:
    """An open upstream stream: forwarded headers are known before the first event."""

    events: AsyncIterator[n.Event]
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class UpstreamContext:
    """What an adapter needs to reach its provider."""

    session: aiohttp.ClientSession
    route: Route
    timeouts: Timeouts
    body_limit: int
    admitted: Reservation | None  # the call's reservation: without one no model is called
    # The process's signers (Bedrock, Vertex); a provider that needs one fails closed without.
    credentials: ProviderCredentials | None = None

    def signer(self) -> Signer | None:
        """What adds this provider's credentials to a call, if its key is not a static header."""
        if self.credentials is None:
            if self.route.provider.kind in ("bedrock", "vertex"):
                raise GatewayError(503, NO_SIGNER, code="provider_not_configured")
            return None
        return self.credentials.signer_for(self.route.provider)


class ProviderAdapter(Protocol):
    """One upstream wire API, spoken in neutral terms."""

    async def complete(
        self, up: UpstreamContext, req: n.Request
    ) -> tuple[n.Response, list[tuple[str, str]]]:
        """A whole answer and the headers to forward."""

    def stream(
        self, up: UpstreamContext, req: n.Request
    ) -> contextlib.AbstractAsyncContextManager[StreamCall]:
        """Open a stream; errors before the first event raise GatewayError on entry."""


class LocalEcho:
    """The in-process `local/echo` model."""

    async def complete(
        self, up: UpstreamContext, req: n.Request
    ) -> tuple[n.Response, list[tuple[str, str]]]:
        """A whole answer."""
        require_admitted(up.admitted)
        return local_echo.complete(req), []

    @contextlib.asynccontextmanager
    async def stream(self, up: UpstreamContext, req: n.Request) -> AsyncIterator[StreamCall]:
        """The answer as events."""
        require_admitted(up.admitted)
        yield StreamCall(events=local_echo.stream(req))
