"""What the admin API stores is within what the gateway can compute with: a quota field out of
its range is refused with a 400 naming the field and the range (`bytes_per_token: 5e-324`
was stored, then made every call on the key a 500), and an account or branch id ending in a
newline is refused (the id pattern ended in `$`, which also matches before a final newline)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from policies.branches import valid_branch_id
from policies.credentials import new_api_key, parse_api_key
from policies.quota import FIELD_RANGES, QUOTA_FIELDS, QuotaError, validate_quota
from policies.quota_plans import PlanError, build_plans, default_plans_data
from tests.support.gateway import Live, gateway_env, settings_for, start_live, stop_live

# Field, refused value, the range the message names.
OUT_OF_RANGE: list[tuple[str, Any, str]] = [
    ("bytes_per_token", 5e-324, "between 0.25 and 64"),
    ("bytes_per_token", 0.1, "between 0.25 and 64"),
    ("bytes_per_token", 65, "between 0.25 and 64"),
    ("default_max_output_tokens", 0, "between 1 and 10000000"),
    ("default_max_output_tokens", 10_000_001, "between 1 and 10000000"),
    ("requests_per_minute", 0, "between 1 and 1000000000000000"),
    ("requests_per_minute", -5, "between 1 and 1000000000000000"),
    ("tokens_per_day", 10**15 + 1, "between 1 and 1000000000000000"),
    ("tokens_per_day", 10**18, "between 1 and 1000000000000000"),
    ("cost_per_day_usd", 1e-300, "between 0.000001 and 1000000000"),
    ("cost_per_month_usd", 1e12, "between 0.000001 and 1000000000"),
    ("max_concurrent", 10**7, "between 1 and 1000000"),
    ("tokens_per_minute", 1e308, "between 1 and 1000000000000000"),
]
NOT_A_NUMBER: list[tuple[str, Any, str]] = [
    ("bytes_per_token", True, "expected a number"),
    ("max_concurrent", False, "expected a number"),
    ("tokens_per_minute", float("nan"), "finite"),
    ("cost_per_day_usd", float("inf"), "finite"),
    ("bytes_per_token", float("-inf"), "finite"),
]


@pytest.fixture
async def live(store_url: str) -> AsyncIterator[Live]:
    gateway = await start_live(settings_for(gateway_env(store_url, None)))
    yield gateway
    await stop_live(gateway)


async def echo(live: Live, key: str) -> int:
    assert live.http is not None
    async with live.http.post(
        f"{live.url}/v1/chat/completions",
        json={"model": "local/echo", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {key}"},
    ) as resp:
        await resp.read()
        return resp.status


@pytest.mark.parametrize(("field", "value", "message"), OUT_OF_RANGE)
async def test_an_out_of_range_quota_is_refused_naming_field_and_range(
    live: Live, field: str, value: Any, message: str
) -> None:
    tenant = await live.tenant()
    for path in (f"/keys/{tenant.key_id}/quota", f"/accounts/{tenant.account}/quota"):
        status, body = await live.admin("PUT", path, {field: value})
        assert status == 400, (path, body)
        assert body["error"]["param"] == field and message in body["error"]["message"], body
    # Nothing was stored: the key still works, within its plan.
    assert await echo(live, tenant.key) == 200


async def test_the_smallest_bytes_per_token_no_longer_breaks_the_key(live: Live) -> None:
    """The reported case: the key keeps working, and the lowest accepted ratio serves."""
    tenant = await live.tenant()
    status, _ = await live.admin("PUT", f"/keys/{tenant.key_id}/quota", {"bytes_per_token": 5e-324})
    assert status == 400
    assert await echo(live, tenant.key) == 200
    low, high = FIELD_RANGES["bytes_per_token"]
    for ratio in (low, high):
        status, body = await live.admin(
            "PUT", f"/keys/{tenant.key_id}/quota", {"bytes_per_token": ratio}
        )
        assert status == 200, body
        assert await echo(live, tenant.key) == 200


async def test_every_bound_itself_is_accepted(live: Live) -> None:
    tenant = await live.tenant()
    for field, (low, high) in FIELD_RANGES.items():
        for bound in (low, high):
            status, body = await live.admin(
                "PUT", f"/accounts/{tenant.account}/quota", {field: bound}
            )
            assert status == 200, (field, bound, body)


@pytest.mark.parametrize(("field", "value", "message"), NOT_A_NUMBER)
def test_not_a_finite_number_is_refused(field: str, value: Any, message: str) -> None:
    """JSON cannot carry NaN or infinity, but a TOML plan can (`nan`, `inf`)."""
    with pytest.raises(QuotaError, match=message) as caught:
        validate_quota({field: value})
    assert caught.value.field == field
    with pytest.raises(PlanError):
        build_plans(default_plans_data(), {"custom": {field: value}})


def test_every_numeric_field_has_a_range() -> None:
    assert set(FIELD_RANGES) == set(QUOTA_FIELDS) - {"strategy"}
    build_plans(default_plans_data())  # the shipped plans are within them


@pytest.mark.parametrize("suffix", ["\n", "\r\n", " ", "\t", "\x00"])
async def test_an_id_with_a_trailing_newline_or_space_is_refused(live: Live, suffix: str) -> None:
    status, body = await live.admin("POST", "/accounts", {"id": f"acct-nl{suffix}"})
    assert status == 400, body
    assert body["error"]["param"] == "id", body
    status, _ = await live.admin("POST", "/accounts", {"id": "acct-ok"})
    assert status in (201, 409)
    status, body = await live.admin(
        "POST", "/accounts/acct-ok/branches", {"id": f"br-x{suffix}", "parent": None}
    )
    assert status == 400, body
    assert body["error"]["param"] == "id", body
    status, listed = await live.admin("GET", "/accounts/acct-ok/branches")
    assert status == 200 and not [b for b in listed["data"] if b["id"].startswith("br-x")]
    status, listed = await live.admin("GET", "/accounts")
    assert status == 200 and not [a for a in listed["data"] if a["id"].startswith("acct-nl")]


@pytest.mark.parametrize("length", [64, 65, 5000])
async def test_an_id_past_63_characters_is_refused_naming_the_limit(
    live: Live, length: int
) -> None:
    status, body = await live.admin("POST", "/accounts", {"id": "a" * length})
    assert status == 400, body
    assert body["error"]["param"] == "id"
    # One limit, whichever check sees it first (the field's length or the id pattern).
    assert "63" in body["error"]["message"] and "64" not in body["error"]["message"], body
    status, body = await live.admin("POST", "/accounts", {"id": "a" * 63})
    assert status in (201, 409), body


def test_id_patterns_match_whole_strings() -> None:
    assert valid_branch_id("br-main") and valid_branch_id("a" * 63)
    for bad in ("br-main\n", "\nbr-main", "br main", "a" * 64, "", "-br"):
        assert not valid_branch_id(bad), repr(bad)
    key_id, key = new_api_key()
    parsed = parse_api_key(key)
    assert parsed is not None and parsed.key_id == key_id
    secret = key.split("_", 2)[2]
    for bad_id in (f"{key_id[:-1]}\n", f" {key_id[1:]}", f"+{key_id[1:]}", key_id.upper()):
        assert parse_api_key(f"ek_{bad_id}_{secret}") is None, repr(bad_id)
