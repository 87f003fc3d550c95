"""Pure quota decisions: plans, overrides, estimates, windows, headers and messages."""

from __future__ import annotations

import calendar

import pytest

from policies.catalog import Model, Price
from policies.quota import QuotaError, Rules, rules_from, validate_quota
from policies.quota_estimate import estimate, period_length, requested_cap, window
from policies.quota_plans import PlanError, build_plans, default_plans_data, shipped_plans
from policies.rate_windows import WindowState, moving_decided, sliding_decided, sliding_retry
from policies.ratelimit import (
    LimitState,
    denial_message,
    ratelimit_headers,
    retry_after,
    tightest,
    too_large_message,
)


def test_shipped_plans_parse_and_default_is_permissive() -> None:
    plans = shipped_plans()
    assert {"default", "free", "pro", "enterprise"} <= set(plans.names())
    assert plans.rules("default", {}).empty
    free = plans.rules("free", {})
    assert free.strategy == "sliding-window-counter"
    assert {r.field for r in free.requests} == {"requests_per_minute", "requests_per_day"}
    assert free.max_concurrent == 2


def test_unknown_plan_name_falls_back_to_default() -> None:
    assert shipped_plans().rules("removed-plan", {}).empty


def test_overrides_replace_and_null_lifts_a_plan_limit() -> None:
    plans = shipped_plans()
    rules = plans.rules("free", {"requests_per_minute": 99, "requests_per_day": None})
    assert [(r.field, r.limit) for r in rules.requests] == [("requests_per_minute", 99)]


def test_config_plans_replace_and_add() -> None:
    plans = build_plans(
        default_plans_data(),
        {"free": {"requests_per_minute": 5}, "team": {"tokens_per_day": 1000}},
    )
    assert [(r.field, r.limit) for r in plans.rules("free", {}).requests] == [
        ("requests_per_minute", 5)
    ]
    assert plans.rules("team", {}).counters[0].limit == 1000


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"requests_per_minute": 0}, "requests_per_minute"),
        ({"requests_per_minute": 1.5}, "requests_per_minute"),
        ({"requests_per_minute": True}, "requests_per_minute"),
        ({"tokens_per_hour": "100"}, "tokens_per_hour"),
        ({"strategy": "fixed"}, "strategy"),
        ({"strategy": None}, "strategy"),
        ({"burst": 3}, "burst"),
        ({"bytes_per_token": 100}, "bytes_per_token"),
    ],
)
def test_invalid_quota_fields_are_named(data: dict[str, object], field: str) -> None:
    with pytest.raises(QuotaError) as err:
        validate_quota(data)
    assert err.value.field == field


def test_plan_errors_name_plan_and_field() -> None:
    with pytest.raises(PlanError, match=r"plans\.bad\.max_concurrent"):
        build_plans({"plans": {"bad": {"max_concurrent": -1}}})


def test_cost_limits_are_micro_usd() -> None:
    rules = rules_from({"cost_per_day_usd": 2.5})
    assert rules.counters[0].kind == "cost" and rules.counters[0].limit == 2_500_000


@pytest.mark.parametrize(
    ("payload", "cap"),
    [
        ({"max_tokens": 10}, 10),
        ({"max_completion_tokens": 11}, 11),
        ({"max_output_tokens": 12}, 12),
        ({"generationConfig": {"maxOutputTokens": 13}}, 13),
        ({"max_tokens": 0}, None),
        ({"max_tokens": True}, None),
        ({}, None),
    ],
)
def test_requested_cap_in_every_api(payload: dict[str, object], cap: int | None) -> None:
    assert requested_cap(payload) == cap


def test_estimate_is_an_upper_bound_and_priced() -> None:
    model = Model(
        id="m",
        provider="p",
        upstream="m",
        price=Price(input=1.0, output=2.0),
        max_output_tokens=500,
    )
    rules = Rules(default_max_output_tokens=4096, bytes_per_token=2.0)
    est = estimate(1001, {}, rules, model)
    assert est.input_tokens == 501  # ceil(1001 / 2)
    assert est.output_tokens == 500  # the model's own cap wins over the plan's default
    assert est.cost_micros == 501 * 1 + 500 * 2
    assert estimate(10, {"max_tokens": 7}, rules, None).output_tokens == 7


def test_windows_are_clock_and_calendar_aligned() -> None:
    t = calendar.timegm((2026, 12, 31, 23, 59, 30))
    assert window("minute", t)[1] == t + 30
    assert window("day", t) == ("2026-12-31", float(t + 30))
    bucket, end = window("month", t)
    assert bucket == "2026-12" and end == calendar.timegm((2027, 1, 1, 0, 0, 0))
    assert period_length("month", calendar.timegm((2026, 2, 10, 0, 0, 0))) == 28 * 86400


def test_weeks_and_time_zones() -> None:
    # Thursday 2026-12-31 23:59:30 UTC is Friday 2027-01-01 00:59:30 in Paris.
    t = calendar.timegm((2026, 12, 31, 23, 59, 30))
    assert window("week", t) == ("2026-W53", float(calendar.timegm((2027, 1, 4, 0, 0, 0))))
    assert period_length("week", t) == 7 * 86400
    day, end = window("day", t, "Europe/Paris")
    assert day == "2027-01-01@Europe/Paris"
    assert end == calendar.timegm((2027, 1, 1, 23, 0, 0))  # midnight in Paris, at UTC+1
    month, month_end = window("month", t, "Europe/Paris")
    assert month == "2027-01@Europe/Paris"
    assert month_end == calendar.timegm((2027, 1, 31, 23, 0, 0))
    # A day in New York that spans the change to summer time is 23 hours long.
    spring = calendar.timegm((2027, 3, 14, 12, 0, 0))
    start = window("day", spring - 86400, "America/New_York")[1]
    assert window("day", spring, "America/New_York")[1] - start == 23 * 3600


def test_budget_settings_are_checked() -> None:
    assert validate_quota({"budget_timezone": "Asia/Tokyo"}) == {"budget_timezone": "Asia/Tokyo"}
    assert validate_quota({"alert_thresholds": [1, 0.5, 0.8, 0.8]}) == {
        "alert_thresholds": [0.5, 0.8, 1.0]
    }
    for bad in ("Mars/Olympus", "../etc/passwd", "/etc/localtime", "", 5):
        with pytest.raises(QuotaError, match="time zone"):
            validate_quota({"budget_timezone": bad})
    for wrong in ([0], [11], ["half"], [True], 0.5, [0.1] * 11):
        with pytest.raises(QuotaError) as caught:
            validate_quota({"alert_thresholds": wrong})
        assert caught.value.field == "alert_thresholds"
    rules = rules_from({"cost_per_week_usd": 5, "budget_timezone": "Asia/Tokyo"})
    assert [c.period for c in rules.counters] == ["week"] and rules.timezone == "Asia/Tokyo"


def _state(remaining: int, limit: int, reset: float, **kw: object) -> LimitState:
    return LimitState(
        policy=f"p{limit}",
        description="requests per minute",
        limit=limit,
        remaining=remaining,
        window=60,
        reset=reset,
        **kw,  # type: ignore[arg-type]
    )


def test_tightest_is_the_smallest_remaining_fraction() -> None:
    states = [_state(50, 100, 10), _state(3, 10, 5), _state(30, 1000, 1)]
    assert tightest(states) == states[2]
    headers = ratelimit_headers(states)
    assert headers == {"RateLimit-Policy": '"p1000";q=1000;w=60', "RateLimit": '"p1000";r=30;t=1'}


def test_retry_after_rounds_up_but_never_below_one() -> None:
    assert retry_after(0.2) == 1
    assert retry_after(2.0) == 2
    assert retry_after(2.01) == 3


def test_messages_name_the_limit_and_scope() -> None:
    state = _state(0, 200, 12.5, scope="account")
    assert denial_message(state) == (
        "Rate limit exceeded: 200 requests per minute for this account. Retry after 13 seconds."
    )
    cost = LimitState(
        "key-cpd", "USD of cost budget per day", 5_000_000, 0, 86400, 3600.0, kind="cost"
    )
    assert denial_message(cost).startswith("Budget exceeded: 5.00 USD of cost budget per day")
    assert "up to 6.00 USD" in too_large_message(cost, 6_000_000)


def test_sliding_window_retry_is_exact() -> None:
    # 20 previous requests weigh 20 * 30/60 = 10, plus 5: one more fits once they weigh < 5,
    # i.e. 15 s from now.
    assert sliding_retry(10, 60, previous=20, current=5, left=30) == 15
    # The current window alone is over: wait for it to become the previous one (20 s), then
    # until its 12 requests weigh under 10 (another 10 s).
    assert sliding_retry(10, 60, previous=0, current=12, left=20) == 30
    state = sliding_decided(10, 60, previous=20, current=5, left=30, allowed=False)
    assert (state.allowed, state.remaining, state.reset) == (False, 0, 15)


def test_moving_window_states() -> None:
    # Admitted into an empty window: it frees up a whole window later.
    assert moving_decided(3, 60, 0, 0.0, 0.0, allowed=True) == WindowState(True, 2, 60.0)
    assert moving_decided(3, 60, 2, 50.0, 0.0, allowed=True) == WindowState(True, 0, 10.0)
    # Refused: once the limit-th newest request is a window old.
    assert moving_decided(3, 60, 3, 50.0, 45.0, allowed=False) == WindowState(False, 0, 15.0)
