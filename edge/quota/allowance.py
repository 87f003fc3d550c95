"""Read-back for administrators: each limit of a scope with its use in the current window and
what remains of it."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from edge.quota.demand import Scope, quota_plan
from edge.store import StoreTimeout
from policies.quota import Rules
from policies.quota_estimate import Estimate
from policies.ratelimit import LimitState

if TYPE_CHECKING:
    from edge.quota.service import QuotaService

_NO_CALL = Estimate(0, 0, 0)


def _row(name: str, state: LimitState, used: int) -> dict[str, Any]:
    scale = 1_000_000 if state.kind == "cost" else 1
    return {
        "name": name,
        "scope": state.scope,
        "kind": state.kind,
        "limit": state.limit / scale if scale > 1 else state.limit,
        "used": used / scale if scale > 1 else used,
        "remaining": state.remaining / scale if scale > 1 else state.remaining,
        "window_seconds": state.window,
        "resets_in": round(max(0.0, state.reset), 3),
    }


async def allowance(
    service: QuotaService, account: str, scopes: list[Scope]
) -> tuple[list[dict[str, Any]], int]:
    """(one row per limit, calls in flight in the first scope)."""
    now = time.time()
    plan = quota_plan(account, scopes, Rules())
    store = service.store.quota
    try:
        async with asyncio.timeout(max(service.timeout * 5, 0.5)):
            demand = plan.demand(_NO_CALL, now, await service.priors.of(plan, now))
            windows = await store.read_windows(demand.windows)
            values, counts = await store.read(
                [c.hold.key for c in demand.counters], [s.slot.key for s in demand.slots]
            )
    except TimeoutError as exc:  # the store's own failures are StoreUnavailable already
        raise StoreTimeout("no answer in time") from exc
    rows = []
    for check, found in zip(demand.rates, windows, strict=True):
        state = check.state(found.remaining, found.reset)
        rows.append(_row(check.rule.field, state, check.rule.limit - found.remaining))
    for counter, value in zip(demand.counters, values, strict=True):
        state = counter.state(value, now)
        rows.append(_row(counter.rule.field, state, value + counter.prior))
    for slot, count in zip(demand.slots, counts, strict=True):
        if slot.slot.limit is not None:
            state = slot.state(count)
            rows.append(_row("max_concurrent", state, count))
    return rows, counts[0] if counts else 0
