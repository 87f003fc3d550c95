"""Traces: a caller's W3C trace context reaches the provider; with OTEL_EXPORTER_OTLP_ENDPOINT
set, spans go to a real OTLP/HTTP receiver (decoded with opentelemetry-proto), parented to the
caller's traceparent, named and attributed by the GenAI conventions, and free of prompt text."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from edge.tracing import PROVIDER_NAMES, carried
from policies.catalog import PROVIDER_KINDS
from tests.support.fake_upstream import FakeUpstream, Scenario
from tests.support.gateway import UPSTREAM_SECRET, GatewayProcess, Live, gateway_env
from tests.support.ports import free_port
from tests.support.recordings import recordings

CHAT = {r.name: r for r in recordings("openai-chat")}
PROMPT = "a-prompt-that-must-never-be-exported-7f3a"


class Receiver:
    """An OTLP/HTTP trace endpoint: keeps every export's raw body and its spans."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.spans: list[Span] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def _traces(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.bodies.append(body)
        export = ExportTraceServiceRequest.FromString(body)
        for resource in export.resource_spans:
            for scope in resource.scope_spans:
                self.spans.extend(scope.spans)
        answer = ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=answer, content_type="application/x-protobuf")

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/v1/traces", self._traces)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = await Receiver().start()
    yield found
    await found.stop()


def attributes(span: Span) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in span.attributes:
        value = kv.value
        out[kv.key] = getattr(value, value.WhichOneof("value") or "string_value")
    return out


def test_only_a_valid_traceparent_is_carried() -> None:
    good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert carried({"traceparent": good, "tracestate": "v=1"}) == {
        "traceparent": good,
        "tracestate": "v=1",
    }
    for bad in (
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # all-zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # all-zero parent
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # unknown version
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\nx: y",
        "garbage",
    ):
        assert carried({"traceparent": bad, "tracestate": "v=1"}) == {}
    assert carried({"traceparent": good, "tracestate": "\x00bad"}) == {"traceparent": good}


async def test_the_callers_trace_context_reaches_the_provider(
    gateway: Live, fake: FakeUpstream
) -> None:
    tenant = await gateway.tenant()
    assert gateway.http is not None
    parent = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
    body = {"model": "gpt-5-4", "messages": [{"role": "user", "content": "hi"}]}
    for sent in ({"traceparent": parent, "tracestate": "vendor=x"}, {"traceparent": "bogus"}):
        fake.push(Scenario(recording=CHAT["openai-text.json"]))
        headers = {"Authorization": f"Bearer {tenant.key}", **sent}
        async with gateway.http.post(
            f"{gateway.url}/v1/chat/completions", json=body, headers=headers
        ) as resp:
            assert resp.status == 200
            await resp.read()
    first, second = fake.requests
    assert first.headers["traceparent"] == parent and first.headers["tracestate"] == "vendor=x"
    assert "traceparent" not in second.headers and "tracestate" not in second.headers


async def test_spans_reach_an_otlp_receiver_parented_to_the_caller(
    fake: FakeUpstream, receiver: Receiver
) -> None:
    env = gateway_env(
        "memory://",
        fake.url,
        EDGE_LOG_LEVEL="info",
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url,
        OTEL_BSP_SCHEDULE_DELAY="50",
    )
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    proc = GatewayProcess(env).start()
    try:
        async with aiohttp.ClientSession() as http:
            tenant = await Live(url=proc.url, http=http).tenant()
            fake.push(Scenario(recording=CHAT["openai-text.json"]))
            headers = {
                "Authorization": f"Bearer {tenant.key}",
                "traceparent": f"00-{trace_id}-{caller_span}-01",
                "x-request-id": "traced-1",
            }
            body = {"model": "gpt-5-4", "messages": [{"role": "user", "content": PROMPT}]}
            async with http.post(
                f"{proc.url}/v1/chat/completions", json=body, headers=headers
            ) as resp:
                assert resp.status == 200
                answer = await resp.json()
    finally:
        # A clean stop flushes the spans still queued (to this loop's receiver: not blocked).
        assert await asyncio.to_thread(proc.stop) == 0
    ours = [s for s in receiver.spans if s.trace_id.hex() == trace_id]
    server = next(s for s in ours if s.kind == Span.SPAN_KIND_SERVER)
    client = next(s for s in ours if s.kind == Span.SPAN_KIND_CLIENT)
    assert server.parent_span_id.hex() == caller_span
    assert client.parent_span_id == server.span_id
    assert server.name == "chat gpt-5-4" and client.name == "chat gpt-5.4"
    got = attributes(server)
    assert got["gen_ai.operation.name"] == "chat"
    assert got["gen_ai.request.model"] == "gpt-5-4"
    assert got["gen_ai.response.model"] == "gpt-5-4"
    assert got["gen_ai.provider.name"] == "openai"
    assert got["gen_ai.usage.input_tokens"] == answer["usage"]["prompt_tokens"]
    assert got["gen_ai.usage.output_tokens"] == answer["usage"]["completion_tokens"]
    assert got["edge.account"] == tenant.account and got["edge.key_id"] == tenant.key_id
    assert got["http.response.status_code"] == 200
    upstream = attributes(client)
    assert upstream["gen_ai.provider.name"] == "openai"
    assert upstream["gen_ai.request.model"] == "gpt-5.4"
    assert upstream["http.response.status_code"] == 200
    # The provider saw the client span's context: its child, in the caller's trace.
    (seen,) = fake.requests
    assert seen.headers["traceparent"] == f"00-{trace_id}-{client.span_id.hex()}-01"
    exported = b"".join(receiver.bodies)
    for secret in (PROMPT.encode(), tenant.key.encode(), UPSTREAM_SECRET.encode()):
        assert secret not in exported
    line = next(
        json.loads(raw)
        for raw in proc.log.read_text().splitlines()
        if '"traced-1"' in raw and '"msg":"request"' in raw
    )
    assert line["trace_id"] == trace_id


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("openai", "openai"),
        ("anthropic", "anthropic"),
        ("gemini", "gcp.gemini"),
        ("azure-openai", "azure.ai.openai"),
        ("bedrock", "aws.bedrock"),
        ("vertex", "gcp.vertex_ai"),
    ],
)
def test_each_cloud_kind_has_its_semantic_conventions_provider_name(kind: str, name: str) -> None:
    assert kind in PROVIDER_KINDS
    assert PROVIDER_NAMES[kind] == name
