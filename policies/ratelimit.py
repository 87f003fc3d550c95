"""Our own remaining allowance, reported as IETF RateLimit-Policy / RateLimit headers, and the
exact Retry-After and message of a denial."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

LimitKind = Literal["requests", "tokens", "cost", "concurrency"]


@dataclass(frozen=True, slots=True)
class LimitState:
    """One limit's state after a decision."""

    policy: str  # a short token naming the limit, e.g. "key-rpm"
    description: str  # how a message names it, e.g. "requests per minute"
    limit: int
    remaining: int
    window: int  # seconds
    reset: float  # seconds until the allowance is back (for a denial: until one more fits)
    scope: str = "key"  # "key" or "account"
    kind: LimitKind = "requests"


def retry_after(seconds: float) -> int:
    """Whole seconds to wait, rounded up so a retry at that time is admitted."""
    return max(1, math.ceil(seconds - 1e-9))


def tightest(states: list[LimitState]) -> LimitState | None:
    """The limit closest to exhaustion, by remaining fraction then latest reset."""
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


def policy_of(header: str) -> tuple[str, int] | None:
    """(limit token, window seconds) of a `RateLimit-Policy` value this module wrote."""
    name, _, rest = header.partition(";")
    token = name.strip().strip('"')
    window = next((p[2:] for p in rest.split(";") if p.startswith("w=")), "")
    if not token or not window.isdigit():
        return None
    return token, int(window)


def _amount(state: LimitState, value: int) -> str:
    return f"{value / 1_000_000:.2f}" if state.kind == "cost" else str(value)


def denial_message(state: LimitState) -> str:
    """The message of a 429 that names the limit and the scope it applies to."""
    what = {
        "requests": "Rate limit exceeded",
        "tokens": "Token limit exceeded",
        "cost": "Budget exceeded",
        "concurrency": "Concurrency limit exceeded",
    }[state.kind]
    return (
        f"{what}: {_amount(state, state.limit)} {state.description} for this {state.scope}. "
        f"Retry after {retry_after(state.reset)} seconds."
    )


def too_large_message(state: LimitState, needed: int) -> str:
    """The message when one request's own estimate is over a whole limit."""
    unit = "USD" if state.kind == "cost" else "tokens"
    return (
        f"Request may use up to {_amount(state, needed)} {unit}, more than the limit of "
        f"{_amount(state, state.limit)} {state.description} for this {state.scope}. "
        "Lower max_tokens (or the output cap of your API)."
    )
