"""Before a call: an upper bound of its tokens and cost, and the windows its counters fall in."""

from __future__ import annotations

import calendar
import datetime as dt
import math
import time
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from policies.catalog import Endpoint, Model
from policies.quota import ROLLING_DAYS, Period, Rules

PERIOD_SECONDS: dict[Period, int] = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
# Windows that follow a calendar in a time zone (a rolling budget is counted per day).
CALENDAR = ("day", "week", "month", *ROLLING_DAYS)
# Where each client API puts its output cap: the fields its adapter reads and its provider gets
# (a passthrough sends them as they are). Chat has two, both still accepted by OpenAI-compatible
# servers: OpenAI refuses a body with both, a server that takes both honours one of them, our
# adapter sends `max_completion_tokens`; the larger bounds every one of those.
_CAP_FIELDS: dict[Endpoint, tuple[str, ...]] = {
    "chat": ("max_completion_tokens", "max_tokens"),
    "responses": ("max_output_tokens",),
    "messages": ("max_tokens",),
    "gemini": (),  # in generationConfig: see _gemini_caps
    "embeddings": (),  # nothing is generated
}
# Client APIs whose calls generate nothing: their estimate holds the input only.
_NO_OUTPUT: frozenset[Endpoint] = frozenset({"embeddings"})
# Google's parser takes a field under its JSON name or its proto name (one of each is refused
# upstream of here, as two spellings of one field); Gemini's adapter reads the same two.
_GEMINI_CONFIG = ("generationConfig", "generation_config")
_GEMINI_CAP = ("maxOutputTokens", "max_output_tokens")


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


def _cap_value(value: Any) -> int | None:
    """A cap as the most lenient reader would take it: an integer, a whole or fractional number
    (rounded up) or a numeral in a string (proto JSON and lax parsers take "60000"). A value no
    reader takes as a positive number (0, true, garbage) is no cap."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, float) and math.isfinite(value) and value > 0:
        return math.ceil(value)
    return None


def _largest(values: list[int | None]) -> int | None:
    caps = [v for v in values if v is not None]
    return max(caps) if caps else None


def _gemini_caps(payload: dict[str, Any]) -> list[int | None]:
    caps: list[int | None] = []
    for config_name in _GEMINI_CONFIG:
        config = payload.get(config_name)
        if isinstance(config, dict):
            caps.extend(_cap_value(config.get(name)) for name in _GEMINI_CAP)
    return caps


def requested_cap(payload: Any, endpoint: Endpoint | None = None) -> int | None:
    """The output cap a request to `endpoint` names, read from the field(s) that go upstream;
    where one API has two, the larger. With no endpoint, the largest cap named in any API's
    fields (an upper bound whatever the API, but a foreign field can then stand in for an
    absent cap: callers that know the endpoint pass it)."""
    if not isinstance(payload, dict):
        return None
    if endpoint is None:
        names = tuple(dict.fromkeys(n for fields in _CAP_FIELDS.values() for n in fields))
        caps = [_cap_value(payload.get(name)) for name in names]
        return _largest(caps + _gemini_caps(payload))
    if endpoint == "gemini":
        return _largest(_gemini_caps(payload))
    return _largest([_cap_value(payload.get(name)) for name in _CAP_FIELDS[endpoint]])


def estimate(
    body_size: int,
    payload: Any,
    rules: Rules,
    model: Model | None,
    endpoint: Endpoint | None = None,
    generates: bool = True,
) -> Estimate:
    """Input bound from the body size, output from the request's cap (or the plan's default),
    never above the model's own output limit; cost from the model's price. A call that
    generates nothing (a token count, an embedding) holds its input only."""
    input_tokens = math.ceil(body_size / rules.bytes_per_token) if body_size else 0
    if not generates or endpoint in _NO_OUTPUT:
        output = 0
    else:
        output = requested_cap(payload, endpoint) or rules.default_max_output_tokens
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


def window(period: Period, now: float, timezone: str = "UTC") -> tuple[str, float]:
    """(bucket id, end time) of the window containing `now`: clock-aligned for seconds, minutes
    and hours; calendar days, ISO weeks (from Monday) and months in `timezone` (an IANA name;
    a bucket in another zone than UTC is named with it, so a changed zone starts afresh)."""
    if period not in CALENDAR:
        length = PERIOD_SECONDS[period]
        bucket = int(now // length)
        return str(bucket), float((bucket + 1) * length)
    zone = dt.UTC if timezone == "UTC" else ZoneInfo(timezone)
    day = dt.datetime.fromtimestamp(now, zone).date()
    if period == "day" or period in ROLLING_DAYS:
        start, end = day, day + dt.timedelta(days=1)
        name = start.isoformat()
    elif period == "week":
        start = day - dt.timedelta(days=day.weekday())
        end = start + dt.timedelta(days=7)
        year, week, _ = start.isocalendar()
        name = f"{year:04d}-W{week:02d}"
    else:
        start = day.replace(day=1)
        end = (start + dt.timedelta(days=32)).replace(day=1)
        name = f"{start.year:04d}-{start.month:02d}"
    boundary = dt.datetime.combine(end, dt.time(), zone).timestamp()
    return (name if timezone == "UTC" else f"{name}@{timezone}"), float(boundary)


def earlier_days(period: Period, now: float, timezone: str = "UTC") -> list[str]:
    """The buckets of a rolling budget's earlier days (all but today's), newest first."""
    today = window("day", now, timezone)[0]
    day = dt.date.fromisoformat(today.split("@")[0])
    suffix = today[10:]  # "@<zone>" outside UTC
    return [
        (day - dt.timedelta(days=n)).isoformat() + suffix
        for n in range(1, ROLLING_DAYS.get(period, 1))
    ]


def period_length(period: Period, now: float) -> int:
    """A window's length in seconds (a month's is the current month's)."""
    if period in ROLLING_DAYS:
        return ROLLING_DAYS[period] * 86400
    if period == "week":
        return 7 * 86400
    if period != "month":
        return PERIOD_SECONDS[period]
    t = time.gmtime(now)
    return calendar.monthrange(t.tm_year, t.tm_mon)[1] * 86400
