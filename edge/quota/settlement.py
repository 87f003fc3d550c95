"""Settlement: a call's real usage charged (the rest of its reservation refunded) and recorded
after it ran, or everything it held given back; retried while the shared store is away."""

from __future__ import annotations

import asyncio
import logging
import random
import time

from edge.quota.backlog import Backlog
from edge.quota.outage import Outage
from edge.quota.reservation import Reservation
from edge.store import Store, StoreUnavailable
from edge.store.usage import NO_KEY, RETENTION_SECONDS, UsageRecord, day_of
from edge.usage import Usage
from policies.catalog import Catalog, Model
from policies.quota_estimate import cost_micros

log = logging.getLogger(__name__)
# Pauses before each settlement retry (jittered by ±25%): at most 76 s in all, less than the
# store keeps a settled marker (SETTLED_KEEP_SECONDS), so a retry never settles a call twice.
SETTLE_PAUSES = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)


def usage_record(
    reservation: Reservation, usage: Usage, cost: int, retention_s: int = RETENTION_SECONDS
) -> UsageRecord:
    """What a call adds to its key's and account's usage counters for today, and to its
    account's counters per key and model (the cost as priced now, never recomputed)."""
    scopes = [f"account:{reservation.account}"]
    if reservation.key_id:
        scopes.append(f"key:{reservation.key_id}")
    counts = (
        ("requests", 1),
        ("input_tokens", usage.input_tokens),
        ("output_tokens", usage.output_tokens),
        ("cached_tokens", usage.cached_tokens),
        ("cost_micros", cost),
    )
    detail = f"{reservation.key_id or NO_KEY}\t{reservation.model or NO_KEY}"
    return UsageRecord(
        tuple(scopes),
        counts,
        day_of(time.time()),
        detail=(reservation.account, detail),
        retention_s=retention_s,
    )


class Settlement:
    """Settles reservations in the shared store, or in this process's for a local decision."""

    def __init__(
        self,
        store: Store,
        outage: Outage,
        backlog: Backlog,
        catalog: Catalog,
        retention_s: int = RETENTION_SECONDS,
    ) -> None:
        self._store = store
        self._outage = outage
        self._backlog = backlog
        self._catalog = catalog
        self._retention_s = retention_s

    def _model(self, name: object) -> Model | None:
        return self._catalog.resolve(name) if isinstance(name, str) and name else None

    async def settle(self, reservation: Reservation, usage: Usage | None) -> None:
        """Charge the real usage (refunding the rest of the reservation) and record it."""
        usage = usage or Usage()
        model = self._model(reservation.model)
        tokens = usage.input_tokens + usage.output_tokens
        cost = cost_micros(model, usage.input_tokens, usage.output_tokens, usage.cached_tokens)
        record = usage_record(reservation, usage, cost, self._retention_s)
        deltas = reservation.deltas(tokens, cost)
        if reservation.local:
            local = self._outage.local
            await local.settle(reservation.marker, reservation.id, deltas, reservation.slots)
            deltas, slots = [], []  # only the usage is left for the shared store
        else:
            slots = reservation.slots
        await self._shared(reservation, deltas, slots, record)

    async def release(self, reservation: Reservation) -> None:
        """Give back everything a reservation holds (a refused or failed call).

        A release running in the background gets a copy: the caller goes on to reuse the
        reservation for a local decision, which rewrites where and what it holds."""
        deltas = reservation.deltas(0, 0)
        if reservation.local:
            local = self._outage.local
            await local.settle(reservation.marker, reservation.id, deltas, reservation.slots)
        else:
            # Right after a timeout or a cancelled call: the store's state is already known to
            # the breaker, so a failure here only means trying again.
            await self._shared(reservation, deltas, reservation.slots, None, judge=False)

    async def _shared(
        self,
        reservation: Reservation,
        deltas: list[tuple[str, int]],
        slots: list[str],
        record: UsageRecord | None,
        judge: bool = True,
    ) -> None:
        """Write a settlement to the shared store, retrying while it is unreachable.

        The answer has already left, so nothing waits on this: a shared reservation's
        settlement that fails is tried again after a pause until the store answers, for about
        a minute. The store keeps a settled marker longer than that, so an attempt that timed
        out but ran after all makes the retries no-ops: nothing is charged or recorded twice."""
        if await self._try(reservation, deltas, slots, record, judge):
            return
        # Only what holds something in the shared store is retried: a call decided locally
        # during an outage holds nothing there, and retrying every one of their usage records
        # would meet the store's return with a backlog as large as the outage's traffic.
        pauses = () if reservation.local else SETTLE_PAUSES
        fallbacks = self._outage.fallbacks
        for pause in pauses:
            if self._backlog.full:
                break  # a long outage must not hold an unbounded backlog in memory
            # Jittered, so that the settlements an outage held back do not all return at once.
            await asyncio.sleep(pause * random.uniform(0.75, 1.25))  # noqa: S311 (not a secret)
            async with self._backlog.retry_slots:
                if await self._try(reservation, deltas, slots, record, judge=False):
                    fallbacks.record("settle_late")
                    return
        fallbacks.record("settle_lost")
        if not reservation.local:  # an outage's local calls are counted, not logged one by one
            log.warning("reservation %s not settled; it expires charged", reservation.id)

    async def _try(
        self,
        reservation: Reservation,
        deltas: list[tuple[str, int]],
        slots: list[str],
        record: UsageRecord | None,
        judge: bool,
    ) -> bool:
        """One settlement attempt. Only a first attempt's failure (`judge`) feeds the breaker:
        admission's own calls keep it accurate, and a retry only waits for it to close."""
        if not self._outage.trusted:
            return False
        try:
            await self._store.quota.settle(
                reservation.marker, reservation.id, deltas, slots, record
            )
        except StoreUnavailable as exc:
            if judge:
                self._outage.breaker.failed(exc)
                log.info("settlement failed (%r)", exc)
            return False
        return True
