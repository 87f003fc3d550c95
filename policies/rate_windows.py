"""Request-rate windows: what a moving window or a sliding window counter reports once a request
is decided, computed alike from Redis's and the in-process storage's raw counts.

- **moving window**: the requests of the last `period` seconds, each with its time. One more
  fits while fewer than `limit` are in the window; a refused request fits again when the
  `limit`-th newest leaves it.
- **sliding window counter**: two clock-aligned fixed windows; the previous one counts in
  proportion to how much of it still overlaps the last `period` seconds (as the `limits`
  library weighs it). One more fits while `floor(weighted) + 1 <= limit`.

Times are seconds; "age" is how long ago a request was counted, "left" how much of the
current fixed window remains.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WindowState:
    """A window after a decision: for RateLimit headers and a refusal's Retry-After."""

    allowed: bool
    remaining: int  # requests that still fit (this one counted, when allowed)
    reset: float  # seconds until one more request's room comes back


def moving_read(limit: int, period: float, count: int, oldest_age: float) -> WindowState:
    """A moving window holding `count` requests, the oldest `oldest_age` seconds old."""
    reset = max(0.0, period - oldest_age) if count else 0.0
    return WindowState(count < limit, max(0, limit - count), reset)


def moving_decided(
    limit: int, period: float, count: int, oldest_age: float, pivot_age: float, allowed: bool
) -> WindowState:
    """A moving window's state after a decision on one more request; `count` and the ages are
    from before it. `pivot_age` is the age of the `limit`-th newest request (refusals only)."""
    if not allowed:
        return WindowState(False, 0, max(0.0, period - pivot_age))
    # The request just counted is the oldest when the window was empty.
    state = moving_read(limit, period, count + 1, oldest_age if count else 0.0)
    return WindowState(True, state.remaining, state.reset)


def _weighted(period: float, previous: int, current: int, left: float) -> float:
    return previous * left / period + current


def sliding_read(
    limit: int, period: float, previous: int, current: int, left: float
) -> WindowState:
    """A sliding window counter with `previous` and `current` window counts and `left` seconds
    of the current window remaining."""
    weighted = _weighted(period, previous, current, left)
    remaining = max(0, limit - math.floor(weighted))
    # When the previous window's weight next drops by a whole request, or the current ends.
    resets = []
    if previous:
        resets.append(left % (period / previous))
    if current:
        resets.append(left)
    return WindowState(math.floor(weighted) + 1 <= limit, remaining, min(resets, default=0.0))


def sliding_retry(limit: int, period: float, previous: int, current: int, left: float) -> float:
    """Seconds until one more request fits a full sliding window counter, exactly."""
    if current >= limit:
        # Only once the current window has become the previous one, and weighs little enough.
        return left + period * (1 - limit / current)
    # Later in this window, once the previous window's share has shrunk enough.
    return max(0.0, left - (limit - current) * period / previous) if previous else 0.0


def sliding_decided(
    limit: int, period: float, previous: int, current: int, left: float, allowed: bool
) -> WindowState:
    """A sliding window counter's state after a decision; the counts are from before it."""
    if not allowed:
        return WindowState(False, 0, sliding_retry(limit, period, previous, current, left))
    state = sliding_read(limit, period, previous, current + 1, left)
    return WindowState(True, state.remaining, state.reset)
