"""Rolling budgets (the last 7 or 30 days, today included): today's counter is held against the
limit less what the earlier days used, so yesterday's use still counts; on memory:// and Redis."""

from __future__ import annotations

import calendar
import time

from edge.appkeys import QUOTA, STORE
from edge.quota.demand import Scope, quota_plan
from edge.store.quota import Hold, counter_key, reservation_key
from policies.quota import Rules, rules_from
from policies.quota_estimate import Estimate, earlier_days, period_length, window
from tests.support.gateway import Live

WORDS = "one two three four five six seven eight nine ten"


def test_earlier_days_and_windows() -> None:
    t = calendar.timegm((2026, 3, 2, 12, 0, 0))
    assert window("rolling_7d", t) == ("2026-03-02", float(calendar.timegm((2026, 3, 3, 0, 0, 0))))
    assert earlier_days("rolling_7d", t) == [
        f"2026-0{m}-{d:02d}" for m, d in ((3, 1), (2, 28), (2, 27), (2, 26), (2, 25), (2, 24))
    ]
    assert len(earlier_days("rolling_30d", t, "Asia/Tokyo")) == 29
    assert earlier_days("rolling_30d", t, "Asia/Tokyo")[0] == "2026-03-01@Asia/Tokyo"
    assert period_length("rolling_30d", t) == 30 * 86400


def test_a_rolling_hold_is_checked_against_what_is_left() -> None:
    rules = rules_from({"tokens_per_7_days": 1000})
    plan = quota_plan("acct", [Scope("account", "account", rules)], Rules())
    now = time.time()
    (today,) = plan.earlier_keys(now)
    assert len(plan.earlier_keys(now)[today]) == 6
    (check,) = plan.demand(Estimate(50, 0, 0), now, {today: 900}).counters
    assert check.hold.key == today and check.hold.limit == 100 and check.hold.amount == 50
    assert check.hold.expires_at > check.ends + 5 * 86400  # kept while it is one of the 7 days
    state = check.state(30, now)
    assert state.remaining == 70 and state.limit == 1000 and state.policy == "account-tp7d"


async def _use_yesterday(gateway: Live, account: str, tokens: int) -> None:
    """Put `tokens` on the account's counter for yesterday, as a call settled then would."""
    assert gateway.app is not None
    quota = gateway.app[STORE].quota
    yesterday = earlier_days("rolling_7d", time.time())[0]
    key = counter_key(account, "account", "tokens_per_7_days", yesterday)
    hold = Hold(key=key, amount=tokens, limit=None, expires_at=time.time() + 7 * 86400)
    marker = reservation_key(account, "seed")
    result = await quota.reserve(marker, "seed", [hold], [], 60.0)
    assert result.admitted
    assert await quota.settle(marker, "seed", [(key, 0)], [])


async def _chat(gateway: Live, key: str) -> tuple[int, dict[str, object]]:
    assert gateway.http is not None
    body = {
        "model": "local/echo",
        "max_tokens": 16,
        "messages": [{"role": "user", "content": WORDS}],
    }
    async with gateway.http.post(
        f"{gateway.url}/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
    ) as resp:
        return resp.status, await resp.json()


async def test_yesterdays_use_counts_against_a_rolling_budget(gateway: Live) -> None:
    tenant = await gateway.tenant(account="acct_rolling")
    status, _ = await gateway.admin(
        "PUT", "/accounts/acct_rolling/quota", {"tokens_per_7_days": 1000}
    )
    assert status == 200
    # Yesterday (written before today's first call, as days are: earlier days are read once).
    await _use_yesterday(gateway, "acct_rolling", 900)
    assert (await _chat(gateway, tenant.key))[0] == 200  # 900 + 76 held: fits, uses 21
    status, answer = await _chat(gateway, tenant.key)  # 921 + 76 > 1000
    assert status == 429, answer
    assert "tokens in any 7 days" in str(answer)
    assert gateway.app is not None
    await gateway.app[QUOTA].wait_settled(10)  # the first call's real use replaces its hold
    status, usage = await gateway.admin("GET", "/accounts/acct_rolling/usage")
    (row,) = [r for r in usage["limits"] if r["name"] == "tokens_per_7_days"]
    assert row["used"] == 900 + 21  # yesterday's and today's one call
    assert row["remaining"] == 1000 - 921
