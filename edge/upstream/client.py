"""The pooled upstream HTTP client, with connect, time-to-headers and idle timeouts."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import aiohttp
from yarl import URL

from edge.errors import GatewayError
from edge.settings import Timeouts
from edge.tracing import note_status, provider_call

if TYPE_CHECKING:  # a type only: adapters stay clear of the quota store
    from edge.quota.reservation import Reservation
    from edge.upstream.signing import Signer

UNREACHABLE = "The upstream provider could not be reached. Retry the request."
TIMED_OUT = "The upstream provider did not answer in time."
INTERRUPTED = "The upstream provider's stream was interrupted."
TOO_LARGE = "The upstream provider's response exceeded the gateway's size limit."
# How much of a provider's error body is read: enough for any real error, never a stream.
ERROR_BODY_LIMIT = 1 << 20
READ_BUFFER = 64 * 1024
# The kernel's receive buffer on provider connections (Linux doubles it). Left to autotuning
# it grows to megabytes while the answer flows fast, and all of that stays queued for a
# client that then reads slowly; 256 KiB still carries a provider's answer at several MB/s
# across a 100 ms round trip.
UPSTREAM_RCVBUF = 256 * 1024


def upstream_socket(addr_info: tuple[Any, ...]) -> socket.socket:
    """A socket for a provider connection, its receive buffer bounded."""
    family, type_, proto = addr_info[0], addr_info[1], addr_info[2]
    sock = socket.socket(family=family, type=type_, proto=proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UPSTREAM_RCVBUF)
    return sock


def client_timeout(timeouts: Timeouts) -> aiohttp.ClientTimeout:
    """Connect and idle-read timeouts (the time to headers is `open_upstream`'s own)."""
    return aiohttp.ClientTimeout(
        total=None, connect=timeouts.connect, sock_connect=timeouts.connect, sock_read=timeouts.idle
    )


def make_session(timeouts: Timeouts | None = None) -> aiohttp.ClientSession:
    """One keep-alive pool for every upstream call in the process. What every call sends and
    its timeouts are the session's defaults, built once rather than per call."""
    connector = aiohttp.TCPConnector(
        limit=0,  # bounded by our own admission, not by the pool
        limit_per_host=0,
        ttl_dns_cache=300,
        # Idle provider connections close after 4-8 s (aiohttp sweeps every keep-alive period),
        # about what the official SDKs (httpx: 5 s) do: busy traffic reuses them long before,
        # and after a burst they do not linger by thousands.
        keepalive_timeout=4,
        family=socket.AF_UNSPEC,
        socket_factory=upstream_socket,
    )
    return aiohttp.ClientSession(
        connector=connector,
        auto_decompress=False,  # we ask for identity bodies and relay bytes as they are
        # Our own User-Agent: aiohttp then adds none, and skips the per-request merge that a
        # skip_auto_headers list costs.
        headers={"Accept-Encoding": "identity", "User-Agent": "edge-gateway"},
        # One provider's cookies must not ride on another tenant's call; and no jar to filter.
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=client_timeout(timeouts or Timeouts()),
        raise_for_status=False,
        # aiohttp buffers up to twice this per response before it stops reading the socket
        # (256 KiB by default): a stream whose client reads slowly holds that much.
        read_bufsize=READ_BUFFER,
    )


def require_admitted(admitted: Reservation | None) -> Reservation:
    """Fail closed: a model is called only for a call admitted by the quota engine (a route
    that forgot admission fails its tests loudly instead of serving for free)."""
    if admitted is None:
        raise GatewayError(500, "The call was not admitted.", code="not_admitted")
    return admitted


@contextlib.asynccontextmanager
async def open_upstream(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeouts: Timeouts,
    *,
    admitted: Reservation | None,
    method: str = "POST",
    signer: Signer | None = None,
    **kwargs: Any,
) -> AsyncIterator[aiohttp.ClientResponse]:
    """Send a request and yield the response once its headers arrive; map transport failures.
    `admitted` is the call's reservation: without one nothing is sent. A `signer` adds the
    provider's credentials (a SigV4 signature, an OAuth token) to the headers as sent."""
    require_admitted(admitted)
    current = session.timeout
    if current.sock_read != timeouts.idle or current.connect != timeouts.connect:
        kwargs["timeout"] = client_timeout(timeouts)  # not the session's own (a caller's choice)
    with provider_call(method, url, headers) as (span, sent):
        try:
            async with asyncio.timeout(timeouts.headers):
                target: str | URL = url
                if signer is not None:  # last: a signature covers the trace headers too
                    sent = await signer.sign(method, url, body, sent)
                    # Sent exactly as signed: yarl would otherwise decode `%3A` in a path.
                    target = URL(url, encoded=True)
                response = await session.request(method, target, data=body, headers=sent, **kwargs)
        except TimeoutError as exc:
            raise GatewayError(504, TIMED_OUT, code="upstream_timeout") from exc
        except aiohttp.ClientError as exc:
            raise GatewayError(502, UNREACHABLE, code="upstream_unreachable") from exc
        note_status(span, response.status)
        try:
            yield response
        finally:
            # Closing (not releasing) an unfinished response drops the connection at once, so
            # the provider stops generating when our client has gone away.
            if response.content.at_eof():
                response.release()
            else:
                response.close()


def interrupted() -> GatewayError:
    """The provider's stream broke off before its end (a new error each time: one shared
    instance would keep the last traceback alive)."""
    return GatewayError(502, INTERRUPTED, code="upstream_interrupted")


async def read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """A whole upstream body, refused once it passes `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > limit:
            # The error's traceback keeps this frame (and what it holds) alive until a garbage
            # collection pass: a request's error is stored in its context, which is in the frame.
            chunks.clear()
            raise GatewayError(502, TOO_LARGE, code="upstream_too_large")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_error_body(response: aiohttp.ClientResponse) -> bytes:
    """A provider's error body, up to `ERROR_BODY_LIMIT`."""
    return await read_capped(response, ERROR_BODY_LIMIT)
