"""A scope never loosens another: a key's estimation settings, which the account's own admin
may set, can make the account-scope hold larger but never smaller than the operator's."""

from __future__ import annotations

from policies.quota import Rules, estimate_values
from tests.support.gateway import Live
from tests.test_admin_quota import _account_admin
from tests.test_quota_support import chat


def test_a_key_can_only_make_the_estimate_stricter() -> None:
    account = {"default_max_output_tokens": 1000, "bytes_per_token": 4.0}
    looser = estimate_values(account, {"default_max_output_tokens": 1, "bytes_per_token": 64})
    assert looser["default_max_output_tokens"] == 1000 and looser["bytes_per_token"] == 4.0
    stricter = estimate_values(account, {"default_max_output_tokens": 5000, "bytes_per_token": 1})
    assert stricter["default_max_output_tokens"] == 5000 and stricter["bytes_per_token"] == 1
    # Against the defaults when the account sets nothing.
    unset = estimate_values({}, {"default_max_output_tokens": 1, "bytes_per_token": 64})
    assert unset["default_max_output_tokens"] == Rules().default_max_output_tokens
    assert unset["bytes_per_token"] == Rules().bytes_per_token
    assert estimate_values(account, None) == account


async def test_an_account_admin_cannot_shrink_the_operators_budget_hold(gateway: Live) -> None:
    tenant = await gateway.tenant()
    assert gateway.http is not None
    status, _ = await gateway.admin(
        "PUT", f"/accounts/{tenant.account}/quota", {"tokens_per_day": 5000}
    )
    assert status == 200
    token = await _account_admin(gateway, tenant.account)
    loosen = {"default_max_output_tokens": 1, "bytes_per_token": 64}
    status, _ = await gateway.admin("PUT", f"/keys/{tenant.key_id}/quota", loosen, token=token)
    assert status == 200
    body = {"model": "local/echo", "messages": [{"role": "user", "content": "hi " * 50}]}
    status, headers, _ = await chat(gateway.http, gateway.url, tenant.key, body)
    assert status == 200
    # What is left of the account's budget once this call's hold is counted: the hold uses
    # the account's default output cap (4,096), not the key's 1 (which left 4,9xx).
    policy, remaining = headers["RateLimit-Policy"], headers["RateLimit"]
    assert policy.startswith('"account-tpd";q=5000'), policy
    left = int(remaining.split(";r=")[1].split(";")[0])
    assert left <= 5000 - Rules().default_max_output_tokens, remaining
