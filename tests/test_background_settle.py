"""Background runs are charged what they used, whatever their end, on memory:// and redis://:
a run cancelled, deleted or failed after streaming output is charged its input estimate and at
least one output token per event it logged (as a foreground stream cut the same way is), once;
and a queued run whose key was revoked, or whose account was blocked, never starts."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator
from typing import Any

import pytest

from edge.appkeys import STORE
from policies.quota import Rules
from tests.support.clock import Deadline, wait_until
from tests.support.fake_upstream import FakeUpstream, Scenario
from tests.support.gateway import Live, Tenant, gateway_env, settings_for, start_live, stop_live
from tests.support.streams import frames

DELTA = "response.output_text.delta"
TERMINAL = ("completed", "failed", "cancelled", "incomplete")
BYTES_PER_TOKEN = Rules().bytes_per_token  # the estimator's ratio in every shipped plan


@pytest.fixture
async def gateway(store_url: str, fake: FakeUpstream) -> AsyncIterator[Live]:
    """One background run at a time, so a second one waits in the queue behind the first."""
    env = gateway_env(store_url, fake.url, EDGE_BACKGROUND_CONCURRENCY="1")
    live = await start_live(settings_for(env))
    yield live
    await stop_live(live)


@pytest.fixture
async def tenant(gateway: Live) -> Tenant:
    return await gateway.tenant()


async def create(gateway: Live, tenant: Tenant, model: str) -> str:
    """Queue a background run; its id."""
    assert gateway.http is not None
    async with gateway.http.post(
        f"{gateway.url}/v1/responses",
        json={"model": model, "input": "tell me a long story", "background": True},
        headers={"Authorization": f"Bearer {tenant.key}"},
    ) as resp:
        body = await resp.json()
        assert resp.status == 200, body
        assert body["status"] == "queued"
        return str(body["id"])


async def logged(gateway: Live, account: str, rid: str) -> list[dict[str, Any]]:
    """The run's event log as stored (read from the store: any key of the account may be gone)."""
    assert gateway.app is not None
    events = await gateway.app[STORE].responses.events(account, rid, -1, 0)
    return [json.loads(data) for _, data in events]


async def deltas_logged(gateway: Live, account: str, rid: str) -> int:
    return sum(e["type"] == DELTA for e in await logged(gateway, account, rid))


async def ended(gateway: Live, account: str, rid: str) -> dict[str, Any]:
    """The run's stored object once it reached a terminal status."""
    assert gateway.app is not None
    store = gateway.app[STORE].responses
    deadline = Deadline(15)  # bounds the test's own waiting
    while True:
        record = await store.get(account, rid)
        assert record is not None
        if record.status in TERMINAL:
            return record.response
        deadline.check(f"the run is still {record.status}")
        await asyncio.sleep(0.02)


async def settled(gateway: Live, key_id: str) -> dict[str, int]:
    """Today's usage of a key once one call was settled for it."""
    deadline = Deadline(15)  # bounds the test's own waiting
    while True:
        status, body = await gateway.admin("GET", f"/keys/{key_id}/usage")
        assert status == 200, body
        today: dict[str, int] = body["today"]
        if today.get("requests", 0) >= 1:
            return today
        deadline.check("no usage was recorded")
        await asyncio.sleep(0.02)


async def running_with_output(gateway: Live, tenant: Tenant, fake: FakeUpstream) -> str:
    """A passthrough run streaming slowly, once it has logged a few output deltas."""
    fake.push(Scenario(frames=frames("responses", 400), delay_chunks=0.05))
    rid = await create(gateway, tenant, "gpt-5-4")

    async def some_output() -> bool:
        return await deltas_logged(gateway, tenant.account, rid) >= 5

    await wait_until(some_output, "the run never logged output")
    return rid


def input_estimate(fake: FakeUpstream) -> int:
    """The input estimate of the body the provider received (relayed as the gateway sent it)."""
    return math.ceil(len(fake.requests[-1].raw) / BYTES_PER_TOKEN)


async def test_a_cancelled_run_is_charged_its_streamed_output(gateway, tenant, fake) -> None:
    rid = await running_with_output(gateway, tenant, fake)
    assert gateway.http is not None
    async with gateway.http.post(
        f"{gateway.url}/v1/responses/{rid}/cancel",
        headers={"Authorization": f"Bearer {tenant.key}"},
    ) as resp:
        assert resp.status == 200 and (await resp.json())["status"] == "cancelled"
    await wait_until(lambda: fake.open_streams == 0, "the provider stream stayed open")
    events = await logged(gateway, tenant.account, rid)
    assert events[-1]["type"] == "response.incomplete"
    deltas = sum(e["type"] == DELTA for e in events)
    usage = await settled(gateway, tenant.key_id)
    assert usage["requests"] == 1
    assert usage["output_tokens"] >= deltas >= 5
    assert usage["input_tokens"] == input_estimate(fake)


async def test_a_deleted_run_is_charged_its_streamed_output(gateway, tenant, fake) -> None:
    rid = await running_with_output(gateway, tenant, fake)
    before = await deltas_logged(gateway, tenant.account, rid)
    assert gateway.http is not None
    async with gateway.http.delete(
        f"{gateway.url}/v1/responses/{rid}", headers={"Authorization": f"Bearer {tenant.key}"}
    ) as resp:
        assert resp.status == 200 and (await resp.json())["deleted"] is True
    await wait_until(lambda: fake.open_streams == 0, "the provider stream stayed open")
    usage = await settled(gateway, tenant.key_id)
    assert usage["requests"] == 1
    assert usage["output_tokens"] >= before >= 5
    assert usage["input_tokens"] == input_estimate(fake)


async def test_a_run_cut_by_its_provider_is_charged_its_streamed_output(
    gateway, tenant, fake
) -> None:
    # The provider's connection breaks after 20 of its events (16 output deltas).
    fake.push(Scenario(frames=frames("responses", 50), delay_chunks=0.02, reset_after=20))
    rid = await create(gateway, tenant, "gpt-5-4")
    failed = await ended(gateway, tenant.account, rid)
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "upstream_interrupted"
    events = await logged(gateway, tenant.account, rid)
    assert [e["type"] for e in events][-2:] == ["error", "response.failed"]
    deltas = sum(e["type"] == DELTA for e in events)
    usage = await settled(gateway, tenant.key_id)
    assert usage["requests"] == 1
    assert usage["output_tokens"] >= deltas >= 1
    assert usage["input_tokens"] == input_estimate(fake)


async def test_a_translated_run_cut_by_its_provider_is_charged(gateway, tenant, fake) -> None:
    # An Anthropic model behind the Responses API: the run goes through the neutral adapter.
    fake.push(Scenario(frames=frames("messages", 50), delay_chunks=0.02, reset_after=20))
    rid = await create(gateway, tenant, "claude-sonnet-4-6")
    failed = await ended(gateway, tenant.account, rid)
    assert failed["status"] == "failed"
    deltas = await deltas_logged(gateway, tenant.account, rid)
    usage = await settled(gateway, tenant.key_id)
    assert usage["requests"] == 1
    assert usage["output_tokens"] >= deltas >= 1
    assert usage["input_tokens"] > 0


async def queued_behind_another(
    gateway: Live, tenant: Tenant, fake: FakeUpstream
) -> tuple[asyncio.Event, str]:
    """Another account's run holds the only worker slot; the tenant's run waits behind it."""
    hold = asyncio.Event()
    fake.push(Scenario(frames=frames("responses", 3), hold=hold))
    other = await gateway.tenant()
    first = await create(gateway, other, "gpt-5-4")
    await wait_until(lambda: len(fake.requests) == 1, "the first run never called the provider")
    rid = await create(gateway, tenant, "gpt-5-4")
    assert gateway.app is not None
    record = await gateway.app[STORE].responses.get(tenant.account, rid)
    assert record is not None and record.status == "queued"
    assert first != rid
    return hold, rid


async def refused_before_start(
    gateway: Live, tenant: Tenant, fake: FakeUpstream, hold: asyncio.Event, rid: str, code: str
) -> None:
    """Once the slot frees, the queued run ends failed with `code`, never reaching the provider,
    and its hold is given back without charging anything."""
    hold.set()
    failed = await ended(gateway, tenant.account, rid)
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == code
    events = await logged(gateway, tenant.account, rid)
    kinds = [e["type"] for e in events]
    assert kinds == ["response.created", "response.queued", "error", "response.failed"]
    assert events[2]["error"]["code"] == code
    assert len(fake.requests) == 1  # only the other account's run
    usage = await settled(gateway, tenant.key_id)
    assert (usage.get("input_tokens", 0), usage.get("output_tokens", 0)) == (0, 0)


async def test_a_revoked_key_stops_its_queued_run(gateway, tenant, fake) -> None:
    hold, rid = await queued_behind_another(gateway, tenant, fake)
    status, body = await gateway.admin("DELETE", f"/keys/{tenant.key_id}")
    assert status == 200, body
    await refused_before_start(gateway, tenant, fake, hold, rid, "key_revoked")


async def test_a_blocked_account_stops_its_queued_run(gateway, tenant, fake) -> None:
    hold, rid = await queued_behind_another(gateway, tenant, fake)
    status, body = await gateway.admin("POST", f"/accounts/{tenant.account}/block")
    assert status == 200, body
    await refused_before_start(gateway, tenant, fake, hold, rid, "account_blocked")
