"""The errors quotas answer with: 429 naming the limit, 503 when a budget cannot be checked."""

from __future__ import annotations

from edge.errors import GatewayError
from policies.ratelimit import (
    LimitState,
    denial_message,
    ratelimit_headers,
    retry_after,
    too_large_message,
)

CODE = "REQUEST_LIMIT_EXCEEDED"

ACCOUNT_BLOCKED = GatewayError(
    429,
    "Your account's AI Gateway quota is blocked. Contact your administrator.",
    code=CODE,
    type="rate_limit_error",
    headers={"Retry-After": "3600"},
    retry=False,  # only an administrator lifts a block
)

BUDGET_UNAVAILABLE = GatewayError(
    503,
    "Token and cost limits cannot be checked right now (quota store unavailable). Retry shortly.",
    code="quota_unavailable",
    headers={"Retry-After": "1"},
)


def limit_exceeded(state: LimitState, needed: int | None = None) -> GatewayError:
    """429 with the exact Retry-After of the limit that refused; `needed` when the call's own
    estimate is over the whole limit."""
    message = denial_message(state)
    never = needed is not None and needed > state.limit
    if never:
        message = too_large_message(state, needed or 0)
    headers = {"Retry-After": str(retry_after(state.reset)), **ratelimit_headers([state])}
    # A call whose own estimate is over the whole limit fits in no window: retrying it only
    # spends the client's time (an SDK retried one for two minutes).
    return GatewayError(
        429, message, code=CODE, type="rate_limit_error", headers=headers, retry=not never
    )
