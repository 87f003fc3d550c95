"""W3C trace context and OpenTelemetry spans.

A caller's valid `traceparent` / `tracestate` always reach the provider call. When
OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set and the `otel` extra
is installed, the gateway also exports spans over OTLP/HTTP: one server span per request
(parented to the caller's `traceparent`) and one client span per provider attempt (whose own
context is what the provider receives), named and attributed by the OpenTelemetry GenAI
semantic conventions plus the tenant's account and key id. Spans carry ids, names, counts and
statuses: never a secret, a prompt or an answer.

The request's trace state lives in a ContextVar set by the middleware
(`edge.middlewares.tracing`), so the one function that
calls providers (`edge.upstream.client.open_upstream`) finds it without being handed it.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import re
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from edge.errors import GatewayError
from edge.routing import Route

try:  # the `otel` extra; without it traces are only propagated
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    HAVE_OTEL = True
except ImportError:  # pragma: no cover - the extra is installed by make run and make test
    HAVE_OTEL = False

log = logging.getLogger(__name__)
ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
# Version 00 exactly (the only one defined); all-zero ids are invalid by the spec.
TRACEPARENT = re.compile(r"00-(?!0{32})([0-9a-f]{32})-(?!0{16})([0-9a-f]{16})-([0-9a-f]{2})")
TRACESTATE = re.compile(r"[\x20-\x7e]{1,512}")
# gen_ai.operation.name per client API, and gen_ai.provider.name per provider kind.
OPERATIONS = {
    "chat": "chat",
    "responses": "chat",
    "messages": "chat",
    "gemini": "generate_content",
    "embeddings": "embeddings",
}
# The GenAI semantic conventions' `gen_ai.provider.name` of each provider kind.
PROVIDER_NAMES = {
    "openai": "openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "azure-openai": "azure.ai.openai",
    "bedrock": "aws.bedrock",
    "vertex": "gcp.vertex_ai",
}


def carried(headers: Mapping[str, str]) -> dict[str, str]:
    """The caller's trace headers worth forwarding: a valid `traceparent`, and its
    `tracestate` when printable and short (anything else is dropped, never relayed)."""
    parent = headers.get("traceparent", "").strip().lower()
    if not TRACEPARENT.fullmatch(parent):
        return {}
    out = {"traceparent": parent}
    state = headers.get("tracestate", "").strip()
    if TRACESTATE.fullmatch(state):
        out["tracestate"] = state
    return out


@dataclass(slots=True)
class _Attempt:
    """What a client span says of the provider attempt under way."""

    operation: str
    provider: str
    model: str


@dataclass(slots=True)
class _Trace:
    """One request's trace state."""

    headers: dict[str, str]  # what goes upstream when no span of ours is open
    tracer: Any = None  # an OpenTelemetry tracer, when exporting
    attempt: _Attempt | None = None


_CURRENT: ContextVar[_Trace | None] = ContextVar("edge.trace", default=None)


class Tracing:
    """The app's span exporter, or nothing (propagation only)."""

    def __init__(self, provider: Any = None) -> None:
        self._provider = provider
        self.tracer: Any = provider.get_tracer("edge") if provider is not None else None

    @property
    def exporting(self) -> bool:
        """True when spans are exported."""
        return self.tracer is not None

    def shutdown(self) -> None:
        """Flush and stop the exporter (spans still queued are sent)."""
        if self._provider is not None:
            self._provider.shutdown()


def tracing_from_env(env: Mapping[str, str]) -> Tracing:
    """Export spans when an OTLP endpoint is configured and the SDK is installed."""
    if not any(env.get(name) for name in ENDPOINT_VARS):
        return Tracing()
    if not HAVE_OTEL:
        log.warning("OTEL_EXPORTER_OTLP_ENDPOINT is set but the otel extra is not installed")
        return Tracing()
    # The SDK and its exporter cost start-up time and memory a process that exports nothing
    # should not pay: they are loaded here, once, only when an endpoint is configured.
    export = importlib.import_module("edge.tracing_export")
    return Tracing(export.exporting_provider())


def parent_context(incoming: dict[str, str]) -> Any:
    """The caller's span context as OpenTelemetry's parent (None: a new trace)."""
    return TraceContextTextMapPropagator().extract(incoming) if incoming else None


@contextlib.contextmanager
def server_span(tracing: Tracing, name: str, parent: Any) -> Iterator[Any]:
    """A request's server span, current while the request is served."""
    with tracing.tracer.start_as_current_span(
        name, context=parent, kind=trace.SpanKind.SERVER, record_exception=False
    ) as span:
        yield span


def set_error(span: Any, kind: str) -> None:
    """Mark a span failed, with what failed (an error code or a status: never a message)."""
    span.set_attribute("error.type", kind)
    span.set_status(trace.StatusCode.ERROR)


@contextlib.contextmanager
def request_scope(incoming: dict[str, str], tracer: Any = None) -> Iterator[None]:
    """The trace state of one request, for every provider call made within it."""
    token = _CURRENT.set(_Trace(incoming, tracer))
    try:
        yield
    finally:
        _CURRENT.reset(token)


def provider_name(route: Route) -> str:
    """gen_ai.provider.name: the well-known name of the provider's kind, else its own name."""
    return PROVIDER_NAMES.get(route.provider.kind, route.provider.name)


def begin_attempt(route: Route) -> None:
    """Say which model and provider the next provider call is for (its span's attributes)."""
    current = _CURRENT.get()
    if current is not None and current.tracer is not None:
        operation = OPERATIONS.get(route.client_api, route.client_api)
        current.attempt = _Attempt(operation, provider_name(route), route.model.upstream)


@contextlib.contextmanager
def provider_call(
    method: str, url: str, headers: dict[str, str]
) -> Iterator[tuple[Any, dict[str, str]]]:
    """Around one provider call: (its client span or None, the headers to send: `headers`
    itself, or a copy with the trace headers, since a caller's dict may be shared)."""
    current = _CURRENT.get()
    if current is None:
        yield None, headers
        return
    if current.tracer is None:
        yield None, {**headers, **current.headers}
        return
    attempt = current.attempt
    name = f"{attempt.operation} {attempt.model}" if attempt else method
    with current.tracer.start_as_current_span(
        name, kind=trace.SpanKind.CLIENT, record_exception=False
    ) as span:
        sent = dict(headers)
        TraceContextTextMapPropagator().inject(sent)
        parts = urlsplit(url)
        span.set_attribute("http.request.method", method)
        span.set_attribute("server.address", parts.hostname or "")
        if parts.port is not None:
            span.set_attribute("server.port", parts.port)
        if attempt is not None:
            span.set_attribute("gen_ai.operation.name", attempt.operation)
            span.set_attribute("gen_ai.provider.name", attempt.provider)
            span.set_attribute("gen_ai.request.model", attempt.model)
        try:
            yield span, sent
        except GatewayError as err:
            set_error(span, err.code or str(err.status))
            raise


def note_status(span: Any, status: int) -> None:
    """Record the provider's answer status on a client span."""
    if span is not None:
        span.set_attribute("http.response.status_code", status)
        if status >= 400:
            set_error(span, str(status))
