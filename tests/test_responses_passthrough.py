"""Every recorded OpenAI Responses exchange through the gateway: bytes unchanged, usage read,
the answer stored for later reads, and a cut stream ended with `error` + `response.failed`."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import orjson
import pytest

from edge.sse import SSEParser
from tests.support.clock import Deadline
from tests.support.fake_upstream import Scenario
from tests.support.recordings import Recording, recordings
from tests.test_responses_schema import ITEMS, validate_event, validate_object

RECS = recordings("openai-responses")
BY_NAME = {r.name: r for r in RECS}
STREAMED = [r for r in RECS if r.streamed]
WHOLE = [r for r in RECS if not r.streamed]
_TYPE = re.compile(r'"type"\s*:\s*"([^"]+)"')
ERROR_STATUS = {"openai-error.1.json": 429, "reasoning-model-temperature-error.json": 400}


def frames_of(rec: Recording) -> list[bytes]:
    """The recording as the provider sent it: `event: <type>` then `data: <json>` per line.

    `Recording.frames()` reads each line with a JSON parser; one recording really has events
    whose closing brace is missing, so the type is read with a pattern here.
    """
    out = []
    for line in rec.path.read_text().splitlines():
        if line.strip():
            match = _TYPE.search(line)
            assert match is not None
            out.append(f"event: {match.group(1)}\ndata: {line}\n\n".encode())
    return out


def parse_sse(raw: bytes) -> list[tuple[str | None, str]]:
    """(event name, data) of each event."""
    parser = SSEParser()
    return [(e.event, e.data) for e in parser.feed(raw) + parser.close()]


def lenient(data: str) -> dict[str, Any]:
    """An event's JSON; the cut-short recorded events are read up to the cut."""
    try:
        value: dict[str, Any] = json.loads(data)
    except json.JSONDecodeError:
        value = json.loads(data + "}")
    return value


def as_relayed(frame: bytes) -> bytes:
    """What the gateway sends for one provider event."""
    ((name, data),) = parse_sse(frame)
    try:
        json.loads(data)
    except json.JSONDecodeError:
        return (
            f"event: {name}\ndata: {json.dumps(lenient(data), separators=(',', ':'))}\n\n".encode()
        )
    return frame


def completed_usage(rec: Recording) -> tuple[int, int]:
    usage: dict[str, Any] = {}
    for line in rec.path.read_text().splitlines():
        if '"response.completed"' in line[:40]:
            usage = lenient(line)["response"].get("usage") or {}
    return usage.get("input_tokens", 0), usage.get("output_tokens", 0)


async def _usage_today(gateway, key_id: str, expect: tuple[int, int]) -> tuple[int, int]:
    # Usage settles as the handler returns, which for a stream is just after the last byte.
    deadline = Deadline(10)
    while True:
        status, body = await gateway.admin("GET", f"/keys/{key_id}/usage")
        # A 503 (the store slow to answer on a loaded machine) says "retry": so does this wait.
        assert status in (200, 503), body
        got = None
        if status == 200:
            got = (body["today"]["input_tokens"], body["today"]["output_tokens"])
        if got == expect or deadline.passed():
            assert got is not None, body
            return got
        await asyncio.sleep(0.02)


async def _post(gateway, key: str, body: dict[str, Any]) -> tuple[int, bytes]:
    async with gateway.http.post(
        f"{gateway.url}/v1/responses", json=body, headers={"Authorization": f"Bearer {key}"}
    ) as resp:
        return resp.status, await resp.read()


async def _get(gateway, key: str, path: str) -> tuple[int, Any]:
    async with gateway.http.get(
        f"{gateway.url}/v1/responses/{path}", headers={"Authorization": f"Bearer {key}"}
    ) as resp:
        return resp.status, await resp.json()


def check_sequence_numbers(events: list[dict[str, Any]]) -> None:
    """Strictly increasing within each response (a stream may hold several responses)."""
    last = -1
    for event in events:
        if event["type"] == "response.created":
            last = -1
        seq = event.get("sequence_number")
        if seq is not None:
            assert seq > last, f"sequence_number {seq} after {last}"
            last = seq


@pytest.mark.parametrize("rec", STREAMED, ids=lambda r: r.name)
async def test_streamed_recording_passes_through_unchanged(gateway, fake, rec: Recording) -> None:
    tenant = await gateway.tenant()
    frames = frames_of(rec)
    fake.push(Scenario(frames=frames))
    status, raw = await _post(
        gateway, tenant.key, {"model": "gpt-5-4", "input": "hi", "stream": True}
    )
    assert status == 200
    # Byte for byte, except an event cut short of its closing brace: that one arrives whole,
    # so an SDK can parse it.
    assert raw == b"".join(as_relayed(f) for f in frames)
    events = [json.loads(data) for _, data in parse_sse(raw)]
    check_sequence_numbers(events)
    assert events[-1]["type"] in ("response.completed", "response.failed")
    seen = fake.requests[-1]
    assert seen.body["model"] == "gpt-5.4" and seen.path == "/v1/responses"
    expect = completed_usage(rec)
    assert await _usage_today(gateway, tenant.key_id, expect) == expect
    # The answer was stored: any replica can serve it by id.
    last = events[-1]["response"]
    status, stored = await _get(gateway, tenant.key, last["id"])
    assert status == 200
    assert stored["status"] == last["status"]
    if last["status"] == "completed":
        assert stored["output"], "output items are kept even when the final event omits them"
    if all(item["type"] in ITEMS for item in stored["output"]):
        # The stored object is the provider's, completed by edge: a valid Open Responses object
        # (unless the provider's hosted tools add items the spec does not define).
        validate_object(stored)


async def test_upstream_error_mid_stream_ends_with_response_failed(gateway, fake) -> None:
    tenant = await gateway.tenant()
    fake.push(Scenario(frames=frames_of(BY_NAME["openai-error.1.chunks.txt"])))
    _, raw = await _post(gateway, tenant.key, {"model": "gpt-5-4", "input": "hi", "stream": True})
    kinds = [name for name, _ in parse_sse(raw)]
    assert kinds[-2:] == ["error", "response.failed"]


@pytest.mark.parametrize("rec", WHOLE, ids=lambda r: r.name)
async def test_whole_recording_passes_through(gateway, fake, rec: Recording) -> None:
    tenant = await gateway.tenant()
    status = ERROR_STATUS.get(rec.name, 200)
    fake.push(Scenario(recording=rec, status=status))
    got_status, raw = await _post(gateway, tenant.key, {"model": "gpt-5-4", "input": "hi"})
    assert got_status == status
    if status == 200:
        assert raw == rec.wire()
        usage = rec.body()["usage"]
        expect = (usage["input_tokens"], usage["output_tokens"])
        assert await _usage_today(gateway, tenant.key_id, expect) == expect
        stored_status, stored = await _get(gateway, tenant.key, rec.body()["id"])
        assert stored_status == 200 and stored["output"] == rec.body()["output"]
    else:
        error = orjson.loads(raw)["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert "https://" not in error["message"]


async def test_a_cut_stream_ends_with_error_and_response_failed(gateway, fake) -> None:
    tenant = await gateway.tenant()
    frames = frames_of(BY_NAME["lmstudio-basic.1.chunks.txt"])[:10]
    fake.push(Scenario(frames=frames))
    _, raw = await _post(gateway, tenant.key, {"model": "gpt-5-4", "input": "hi", "stream": True})
    events = [json.loads(data) for _, data in parse_sse(raw)]
    assert raw.startswith(b"".join(frames))
    tail = events[len(frames) :]
    assert [e["type"] for e in tail] == ["error", "response.failed"]
    assert [e["sequence_number"] for e in tail] == [10, 11]
    for event in tail:
        validate_event(event)
    assert tail[1]["response"]["error"]["code"] == "upstream_interrupted"


async def test_store_false_is_not_kept(gateway, fake) -> None:
    tenant = await gateway.tenant()
    rec = BY_NAME["lmstudio-basic.1.json"]
    fake.push(Scenario(recording=rec))
    status, _ = await _post(
        gateway, tenant.key, {"model": "gpt-5-4", "input": "hi", "store": False}
    )
    assert status == 200
    status, body = await _get(gateway, tenant.key, rec.body()["id"])
    assert status == 404 and body["error"]["code"] == "response_not_found"


async def test_ids_that_cannot_exist_are_404(gateway) -> None:
    tenant = await gateway.tenant()
    for bad in ("resp_x!", "a" * 200):
        status, body = await _get(gateway, tenant.key, bad)
        assert status == 404 and body["error"]["code"] == "response_not_found"
    status, _ = await _get(gateway, tenant.key, "resp%2Fx")
    assert status == 404
    status, raw = await _post(
        gateway, tenant.key, {"model": "local/echo", "input": "x", "previous_response_id": "r}"}
    )
    assert status == 404 and orjson.loads(raw)["error"]["code"] == "previous_response_not_found"
