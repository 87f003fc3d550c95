"""Before a call: an upper bound of its tokens and cost, and the windows its counters fall in."""

from __future__ import annotations

import calendar
import math
import time
from dataclasses import dataclass
from typing import Any

from policies.catalog import Model
from policies.quota import Period, Rules

PERIOD_SECONDS: dict[Period, int] = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
# Where each client API puts its output cap.
_CAP_FIELDS = ("max_completion_tokens", "max_tokens", "max_output_tokens")


@dataclass(frozen=True, slots=True)
class Estimate:
    """What a call may use at most."""

    input_tokens: int
    output_tokens: int
    cost_micros: int

    @property
    def tokens(self) -> int:
        """Input plus output."""
        return self.input_tokens + self.output_tokens


def _positive_int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


def requested_cap(payload: Any) -> int | None:
    """The output cap a request names, in any client API's field."""
    if not isinstance(payload, dict):
        return None
    for name in _CAP_FIELDS:
        cap = _positive_int(payload.get(name))
        if cap is not None:
            return cap
    config = payload.get("generationConfig") or payload.get("generation_config")
    if isinstance(config, dict):
        return _positive_int(config.get("maxOutputTokens") or config.get("max_output_tokens"))
    return None


def estimate(body_size: int, payload: Any, rules: Rules, model: Model | None) -> Estimate:
    """Input bound from the body size, output from the request's cap (or the plan's default),
    never above the model's own output limit; cost from the model's price."""
    input_tokens = math.ceil(body_size / rules.bytes_per_token) if body_size else 0
    output = requested_cap(payload) or rules.default_max_output_tokens
    if model is not None and model.max_output_tokens:
        output = min(output, model.max_output_tokens)
    cost = 0
    if model is not None:
        cost = math.ceil(model.price.cost(input_tokens, output) * 1_000_000)
    return Estimate(input_tokens, output, cost)


def cost_micros(model: Model | None, input_tokens: int, output_tokens: int, cached: int) -> int:
    """The real cost of a call in micro-USD."""
    if model is None:
        return 0
    return round(model.price.cost(input_tokens, output_tokens, cached) * 1_000_000)


def window(period: Period, now: float) -> tuple[str, float]:
    """(bucket id, end time) of the window containing `now`: clock-aligned, calendar for
    day (UTC) and month (UTC)."""
    if period == "month":
        t = time.gmtime(now)
        year, month = (t.tm_year + 1, 1) if t.tm_mon == 12 else (t.tm_year, t.tm_mon + 1)
        end = calendar.timegm((year, month, 1, 0, 0, 0))
        return f"{t.tm_year:04d}-{t.tm_mon:02d}", float(end)
    length = PERIOD_SECONDS[period]
    bucket = int(now // length)
    if period == "day":
        return time.strftime("%Y-%m-%d", time.gmtime(now)), float((bucket + 1) * length)
    return str(bucket), float((bucket + 1) * length)


def period_length(period: Period, now: float) -> int:
    """A window's length in seconds (a month's is the current month's)."""
    if period != "month":
        return PERIOD_SECONDS[period]
    t = time.gmtime(now)
    return calendar.monthrange(t.tm_year, t.tm_mon)[1] * 86400
