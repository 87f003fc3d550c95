"""The checks that need no body, made before it is read: a blocked account is refused at once,
and a large body is read only when the caller's request-rate windows and concurrency limits
have room. A refused caller costs the gateway nothing of its body (what arrives after the
answer is read and dropped, never held). The atomic reservation after the body stays the one
that counts: this only reads, so a race past it is still refused there."""

from __future__ import annotations

import time

from edge.context import RequestContext
from edge.limits_parse import LARGE_BODY
from edge.quota.decision import refusal
from edge.quota.service import QuotaService
from edge.store import StoreUnavailable
from edge.store.quota import ReserveResult
from policies.quota_estimate import Estimate

NOTHING = Estimate(0, 0, 0)


async def precheck(quota: QuotaService, ctx: RequestContext, body_size: int | None) -> None:
    """Refuse a blocked caller, and a large or unsized body whose limits are already full."""
    account, key = await quota.caller(ctx)
    # A body that takes no parse slot costs less to read than a store round trip to spare it.
    if (body_size is not None and body_size <= LARGE_BODY) or not quota.store_trusted:
        return
    plan = quota.plan(account, key)
    limited_slots = [s for s in plan.slots if s.slot.limit is not None]
    if not plan.rates and not limited_slots:
        return
    now = time.time()
    demand = plan.demand(NOTHING, now)
    demand.counters = []
    demand.slots = limited_slots
    try:
        windows = await quota.store.quota.read_windows(demand.windows)
        _, in_flight = await quota.store.quota.read([], [s.slot.key for s in limited_slots])
    except StoreUnavailable:
        return  # the reservation after the body decides, with its own fallback
    outcome = ReserveResult(admitted=False, in_flight=in_flight, windows=windows)
    full = any(not w.allowed for w in windows) or any(
        s.slot.refuses(n) for s, n in zip(limited_slots, in_flight, strict=True)
    )
    if full:
        raise refusal(demand, outcome, now)
