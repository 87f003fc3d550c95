"""Issue 15, case 3: stored responses are bounded per account (memory:// and redis://).

An account's `storage_bytes` (a plan field, overridable) bounds the bytes its stored responses
hold (records, input and output items, background event logs); a store that would pass it is
refused with 429 REQUEST_LIMIT_EXCEEDED naming it, before the provider is called; deleting a
response gives its bytes back; other accounts are unaffected; the admin usage read-back shows
the figure. `max_stored_response_bytes` caps one response: refused with 400 before the call,
and a background run whose log reaches either bound ends `failed` with a code naming it."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from edge.appkeys import STORE
from edge.store.responses import record_size
from policies.quota import QuotaError, validate_quota
from policies.quota_plans import shipped_plans
from tests.support.clock import Deadline
from tests.support.fake_upstream import Scenario
from tests.support.gateway import Live, Tenant
from tests.test_responses_chain import answer

TERMINAL = ("completed", "failed", "cancelled", "incomplete")


async def _post(
    gateway: Live, key: str, body: dict[str, Any]
) -> tuple[int, dict[str, str], dict[str, Any]]:
    assert gateway.http is not None
    async with gateway.http.post(
        f"{gateway.url}/v1/responses", json=body, headers={"Authorization": f"Bearer {key}"}
    ) as resp:
        return resp.status, dict(resp.headers), orjson.loads(await resp.read())


async def _get(gateway: Live, key: str, path: str, method: str = "GET") -> tuple[int, Any]:
    assert gateway.http is not None
    async with gateway.http.request(
        method, f"{gateway.url}/v1{path}", headers={"Authorization": f"Bearer {key}"}
    ) as resp:
        return resp.status, orjson.loads(await resp.read())


async def _limit(gateway: Live, tenant: Tenant, **quota: Any) -> None:
    status, body = await gateway.admin("PUT", f"/accounts/{tenant.account}/quota", quota)
    assert status == 200, body


async def _storage(gateway: Live, tenant: Tenant) -> dict[str, Any]:
    status, body = await gateway.admin("GET", f"/accounts/{tenant.account}/usage")
    assert status == 200, body
    return dict(body["storage"])


async def _held(gateway: Live, tenant: Tenant, ids: list[str]) -> int:
    """What the stored records of `ids` hold, as the store counts them (no event logs)."""
    assert gateway.app is not None
    responses = gateway.app[STORE].responses
    total = 0
    for rid in ids:
        record = await responses.get(tenant.account, rid)
        assert record is not None
        total += record_size(record)
    return total


async def _finished(gateway: Live, key: str, rid: str) -> dict[str, Any]:
    deadline = Deadline(20)
    while True:
        status, body = await _get(gateway, key, f"/responses/{rid}")
        assert status == 200, body
        if body["status"] in TERMINAL:
            return dict(body)
        deadline.check(f"still {body['status']}")
        await asyncio.sleep(0.02)


def test_storage_fields_are_validated_and_every_shipped_plan_bounds_storage() -> None:
    for bad in ({"storage_bytes": 0}, {"storage_bytes": -1}, {"storage_bytes": 1.5}):
        with pytest.raises(QuotaError) as caught:
            validate_quota(bad)
        assert caught.value.field == "storage_bytes"
    for cap in (0, 1023, 256 * 1024 * 1024 + 1):
        with pytest.raises(QuotaError):
            validate_quota({"max_stored_response_bytes": cap})
    with pytest.raises(QuotaError):
        validate_quota({"max_stored_response_bytes": None})  # a setting, never lifted
    assert validate_quota({"storage_bytes": None}) == {"storage_bytes": None}  # lifts a plan's
    plans = shipped_plans()
    for name in plans.names():
        rules = plans.rules(name, {})
        assert rules.storage_bytes is not None and rules.storage_bytes <= 16 * 2**30, name
        assert rules.max_stored_response_bytes <= rules.storage_bytes, name
    # An account that names no plan is bounded too: one tenant cannot fill Redis.
    assert plans.rules(None, {}).storage_bytes == 256 * 2**20


async def test_an_account_stores_until_its_quota_then_gets_429(gateway: Live, fake) -> None:
    tenant = await gateway.tenant()
    other = await gateway.tenant()
    text = "word " * 400
    status, _, first = await _post(gateway, tenant.key, {"model": "local/echo", "input": text})
    assert status == 200, first
    one = await _held(gateway, tenant, [first["id"]])
    await _limit(gateway, tenant, storage_bytes=3 * one + one // 2)
    kept = [first["id"]]
    refused: tuple[int, dict[str, str], dict[str, Any]] | None = None
    for _ in range(6):
        status, headers, body = await _post(
            gateway, tenant.key, {"model": "local/echo", "input": text}
        )
        if status != 200:
            refused = (status, headers, body)
            break
        kept.append(body["id"])
    assert refused is not None, "the quota never refused a store"
    status, headers, body = refused
    assert status == 429, body
    assert body["error"]["code"] == "REQUEST_LIMIT_EXCEEDED"
    assert "storage_bytes" in body["error"]["message"], body
    assert headers.get("x-should-retry") == "false"
    assert 1 <= int(headers["Retry-After"]) <= 30 * 86400  # when the oldest ones expire
    # What is counted is exactly what is stored, and at most one response past the limit.
    used = await _held(gateway, tenant, kept)
    seen = await _storage(gateway, tenant)
    assert seen["used_bytes"] == used and seen["responses"] == len(kept)
    assert seen["storage_bytes"] == 3 * one + one // 2
    assert used <= seen["storage_bytes"] + one
    # Refused before the provider is called (a provider model: the fake hears nothing).
    calls = len(fake.requests)
    status, _, body = await _post(gateway, tenant.key, {"model": "gpt-5-4", "input": text})
    assert status == 429 and "storage_bytes" in body["error"]["message"]
    assert len(fake.requests) == calls
    # Not storing is always possible; other accounts are not touched.
    body_nostore = {"model": "local/echo", "input": text, "store": False}
    assert (await _post(gateway, tenant.key, body_nostore))[0] == 200
    assert (await _post(gateway, other.key, {"model": "local/echo", "input": text}))[0] == 200
    # Deleting responses gives their bytes back: storing works again.
    for rid in kept[:2]:
        assert (await _get(gateway, tenant.key, f"/responses/{rid}", "DELETE"))[0] == 200
    after = await _storage(gateway, tenant)
    assert after["used_bytes"] == await _held(gateway, tenant, kept[2:])
    status, _, body = await _post(gateway, tenant.key, {"model": "local/echo", "input": text})
    assert status == 200, body


async def test_usage_read_back_shows_the_storage_of_the_account(gateway: Live) -> None:
    tenant = await gateway.tenant()
    empty = await _storage(gateway, tenant)
    assert empty == {
        "used_bytes": 0,
        "responses": 0,
        "storage_bytes": 256 * 2**20,  # the default plan's
        "remaining_bytes": 256 * 2**20,
        "max_stored_response_bytes": 64 * 2**20,
    }
    status, _, made = await _post(gateway, tenant.key, {"model": "local/echo", "input": "hi"})
    assert status == 200
    used = await _held(gateway, tenant, [made["id"]])
    seen = await _storage(gateway, tenant)
    assert (seen["used_bytes"], seen["responses"]) == (used, 1)
    assert seen["remaining_bytes"] == 256 * 2**20 - used
    # The key's read-back shows its account's storage too; a lifted limit reads null.
    await _limit(gateway, tenant, storage_bytes=None)
    status, body = await gateway.admin("GET", f"/keys/{tenant.key_id}/usage")
    assert status == 200, body
    assert body["storage"]["used_bytes"] == used
    assert body["storage"]["storage_bytes"] is None and body["storage"]["remaining_bytes"] is None


async def test_a_response_over_the_per_response_cap_is_refused_before_the_call(
    gateway: Live, fake
) -> None:
    tenant = await gateway.tenant()
    await _limit(gateway, tenant, max_stored_response_bytes=2048)
    big = "x" * 4000
    calls = len(fake.requests)
    status, headers, body = await _post(gateway, tenant.key, {"model": "gpt-5-4", "input": big})
    assert status == 400, body
    assert body["error"]["code"] == "stored_response_too_large"
    assert "max_stored_response_bytes" in body["error"]["message"]
    assert headers.get("x-should-retry") == "false"
    assert len(fake.requests) == calls
    fake.push(Scenario(body=answer("resp_unstored", "fine")))
    status, _, body = await _post(
        gateway, tenant.key, {"model": "gpt-5-4", "input": big, "store": False}
    )
    assert status == 200, body
    assert (await _storage(gateway, tenant))["used_bytes"] < 2048  # only its marker


async def test_an_answer_that_outgrows_the_cap_is_answered_not_kept(gateway: Live) -> None:
    tenant = await gateway.tenant()
    await _limit(gateway, tenant, max_stored_response_bytes=2048)
    # The input fits the cap; the echoed answer with it does not.
    status, _, made = await _post(gateway, tenant.key, {"model": "local/echo", "input": "y" * 1000})
    assert status == 200 and made["output"], made
    status, _ = await _get(gateway, tenant.key, f"/responses/{made['id']}")
    assert status == 404
    status, _, body = await _post(
        gateway,
        tenant.key,
        {"model": "local/echo", "input": "more", "previous_response_id": made["id"]},
    )
    assert status == 400 and body["error"]["code"] == "previous_response_not_stored"
    assert "max_stored_response_bytes" in body["error"]["message"]


async def test_a_background_event_log_counts_and_is_given_back(gateway: Live) -> None:
    tenant = await gateway.tenant()
    status, _, queued = await _post(
        gateway, tenant.key, {"model": "local/echo", "input": "w " * 50, "background": True}
    )
    assert status == 200, queued
    await _finished(gateway, tenant.key, queued["id"])
    assert gateway.app is not None
    responses = gateway.app[STORE].responses
    record = await responses.get(tenant.account, queued["id"])
    assert record is not None and record.status == "completed"
    logged = [data for _, data in await responses.events(tenant.account, queued["id"], -1, 0)]
    assert len(logged) > 50  # a delta per word, at least
    seen = await _storage(gateway, tenant)
    assert seen["used_bytes"] == record_size(record, logged) > record_size(record) + 50 * 100
    assert (await _get(gateway, tenant.key, f"/responses/{queued['id']}", "DELETE"))[0] == 200
    assert (await _storage(gateway, tenant))["used_bytes"] == 0


@pytest.mark.parametrize(
    ("field", "code"),
    [
        ("storage_bytes", "storage_limit_exceeded"),
        ("max_stored_response_bytes", "stored_response_too_large"),
    ],
)
async def test_a_background_run_whose_log_passes_a_bound_fails_naming_it(
    gateway: Live, field: str, code: str
) -> None:
    tenant = await gateway.tenant()
    # The queued record (input and job: ~8 KB) fits; the log of 2000 echoed words does not.
    await _limit(gateway, tenant, **{field: 50_000})
    status, _, queued = await _post(
        gateway, tenant.key, {"model": "local/echo", "input": "w " * 2000, "background": True}
    )
    assert status == 200, queued
    done = await _finished(gateway, tenant.key, queued["id"])
    assert done["status"] == "failed", done
    assert done["error"]["code"] == code and field in done["error"]["message"], done
    assert done["output"] == []
    # What it logged stopped at the bound (its closing failure counted past it, a few KB).
    assert (await _storage(gateway, tenant))["used_bytes"] <= 50_000 + 16_000


async def test_a_background_run_over_the_quota_is_refused_before_it_is_queued(
    gateway: Live,
) -> None:
    tenant = await gateway.tenant()
    await _limit(gateway, tenant, storage_bytes=4000)
    status, headers, body = await _post(
        gateway, tenant.key, {"model": "local/echo", "input": "w " * 2000, "background": True}
    )
    assert status == 429, body
    assert body["error"]["code"] == "REQUEST_LIMIT_EXCEEDED"
    assert "storage_bytes" in body["error"]["message"]
    assert headers.get("x-should-retry") == "false"
    assert (await _storage(gateway, tenant))["used_bytes"] == 0
