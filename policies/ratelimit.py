"""Our own remaining allowance, reported as IETF RateLimit-Policy / RateLimit headers, and the
exact Retry-After of a denial."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LimitState:
    """One limit's state after a decision."""

    policy: str  # a short token naming the limit, e.g. "key-rpm"
    description: str  # how a message names it, e.g. "requests per minute"
    limit: int
    remaining: int
    window: int  # seconds
    reset: float  # seconds until the allowance is back (for a denial: until one more fits)


def retry_after(seconds: float) -> int:
    """Whole seconds to wait, rounded up so a retry at that time is admitted."""
    return max(1, math.ceil(seconds - 1e-9))


def tightest(states: list[LimitState]) -> LimitState | None:
    """The limit closest to exhaustion, by remaining fraction then soonest reset."""
    if not states:
        return None
    return min(states, key=lambda s: (s.remaining / s.limit if s.limit else 0.0, -s.reset))


def ratelimit_headers(states: list[LimitState]) -> dict[str, str]:
    """`RateLimit-Policy` and `RateLimit` headers (draft-ietf-httpapi-ratelimit-headers)."""
    state = tightest(states)
    if state is None:
        return {}
    return {
        "RateLimit-Policy": f'"{state.policy}";q={state.limit};w={state.window}',
        "RateLimit": f'"{state.policy}";r={max(0, state.remaining)};t={math.ceil(state.reset)}',
    }


def denial_message(state: LimitState) -> str:
    """The message of a 429 that names the limit."""
    return (
        f"Rate limit exceeded: {state.limit} {state.description}. "
        f"Retry after {retry_after(state.reset)} seconds."
    )
