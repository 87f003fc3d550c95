"""The OpenTelemetry SDK and its OTLP/HTTP exporter: loaded only by a process that exports."""

from __future__ import annotations

from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


def exporting_provider() -> Any:
    """A tracer provider that batches spans to the OTLP endpoint of the OTEL_* variables."""
    provider = TracerProvider(resource=Resource.create({"service.name": "edge"}))
    # The exporter reads the endpoint, headers and timeout from the OTEL_* variables itself.
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider
