"""Admission: before the upstream call, one atomic reservation checks every limit of the call
(request-rate windows, token and cost counters, in-flight slots) and counts it in all of them or
none, in the shared store, or in this process on its share of each limit while that store is
unreachable."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import replace

from edge.context import RequestContext
from edge.quota.backlog import Backlog
from edge.quota.decision import Admission, admitted_states, refusal
from edge.quota.demand import Demand, QuotaPlan
from edge.quota.leases import Leases, Spent
from edge.quota.outage import Outage
from edge.quota.priors import Priors
from edge.quota.reservation import Reservation
from edge.quota.settlement import Settlement
from edge.quota.unrecorded import Unrecorded
from edge.store import Store, StoreTimeout, StoreUnavailable
from edge.store.quota import QuotaStore, ReserveResult
from edge.store.records import Account, KeyRecord
from policies.catalog import Model
from policies.quota_estimate import estimate
from policies.rate_windows import WindowState

log = logging.getLogger(__name__)
BACKSTOP = 10  # the whole decision's deadline, in store timeouts


class _StoreDown(Exception):
    """The shared store did not answer in time: decide locally."""


def _decided(
    demand: Demand, reservation: Reservation, outcome: ReserveResult, now: float
) -> Admission:
    """The admission a reservation's outcome makes, or the 429 it raises."""
    if outcome.admitted:
        return Admission(admitted_states(demand, outcome, now), reservation)
    raise refusal(demand, outcome, now)


class Admitter:
    """Reserves a call's demand where it is decided now: the shared store, or this process."""

    def __init__(
        self,
        store: Store,
        outage: Outage,
        backlog: Backlog,
        settlement: Settlement,
        lease: float,
        timeout: float,
        priors: Priors | None = None,
        leases: Leases | None = None,
    ) -> None:
        self._store = store
        self._priors = priors or Priors(store)
        self._outage = outage
        self._backlog = backlog
        self._settlement = settlement
        self._lease = lease  # how long an unsettled reservation holds (a crashed replica's)
        self._timeout = timeout
        self._leases = leases  # slices of hot request-rate windows (a shared store only)
        self._unrecorded = Unrecorded(self._bookkeep, backlog)

    async def admit(
        self,
        ctx: RequestContext,
        caller: tuple[Account, KeyRecord | None],
        plan: QuotaPlan,
        model: Model | None,
        generates: bool,
    ) -> Admission:
        """Admit the call or raise 429 (a limit) / 503 (a budget that cannot be checked)."""
        account, key = caller
        payload = ctx.payload if isinstance(ctx.payload, dict) else {}
        sent = len(ctx.body or b"") + ctx.history_bytes
        # The cap is read from the fields of the call's own API (another API's is not sent).
        endpoint = ctx.routes[0].client_api if ctx.routes else None
        est = estimate(sent, payload, plan.estimate_rules, model, endpoint, generates)
        now = time.time()
        try:
            priors = await self._priors.of(plan, now)
        except StoreUnavailable:
            priors = {}  # the reservation below meets the same outage and its failure policy
        demand = plan.demand(est, now, priors)
        reservation = Reservation(
            id=secrets.token_hex(12),
            account=account.id,
            key_id=key.id if key else None,
            model=model.id if model else None,
            tokens=est.tokens,
            cost_micros=est.cost_micros,
            holds=[[c.hold.key, c.rule.kind, c.hold.amount] for c in demand.counters],
            slots=[s.slot.key for s in demand.slots],
        )
        if self._store.shared and self._outage.breaker.allows():
            leases = self._leases
            windows, spent = leases.spend(demand.rates, now) if leases else ([], [])
            try:
                if leases is not None and spent:
                    return await self._leased(demand, reservation, windows, spent, now)
                return await self._shared(demand, reservation, now)
            except _StoreDown:
                if leases is not None:
                    leases.unspend(spent)  # the local decision below counts the call itself
        return await self._local(demand, reservation, now, fallback=self._store.shared)

    async def _leased(
        self,
        demand: Demand,
        reservation: Reservation,
        windows: list[WindowState],
        spent: Spent,
        now: float,
    ) -> Admission:
        """A call whose every request-rate window this replica's leases covered: the rest of
        its demand goes to the store, and when nothing in that rest can refuse, the call does
        not wait for the store at all."""
        assert self._leases is not None
        rest = Demand(demand.estimate, [], demand.counters, demand.slots)
        rates = [c.state(w.remaining, w.reset) for c, w in zip(demand.rates, windows, strict=True)]
        if not rest.counters and all(s.slot.limit is None for s in rest.slots):
            # The marker and the in-flight sets are written off the call path, and only if the
            # call is still running a moment later: with no limit among them nothing can
            # refuse, and a settlement that gets there first leaves the marker that makes a
            # late write count nothing.
            self._unrecorded.add(rest, reservation)
            return Admission(rates, reservation)
        try:
            admission = await self._shared(rest, reservation, now)
        except BaseException:
            self._leases.unspend(spent)  # refused (or gone) for another limit: not a request
            raise
        admission.states += rates
        return admission

    def ended(self, reservation: Reservation) -> None:
        """A call is being settled: a leased call not recorded yet never will be."""
        self._unrecorded.ended(reservation)

    def close(self) -> None:
        """Record the leased calls still running (at shutdown)."""
        self._unrecorded.close()

    async def _bookkeep(self, demand: Demand, reservation: Reservation) -> None:
        """Record an admitted call's reservation (marker and in-flight sets) in the store."""
        try:
            await self._reserve_in(self._store.quota, demand, reservation)
        except StoreUnavailable as exc:
            log.info("a leased call's in-flight record was not written (%s)", exc)

    async def _shared(self, demand: Demand, reservation: Reservation, now: float) -> Admission:
        reserve = self._reserve_in(self._store.quota, demand, reservation)
        breaker = self._outage.breaker
        try:
            # The Redis client's own timeouts bound the call (connect, then answer); this is only
            # a backstop. A deadline as tight as those timeouts would also fire when this
            # process's event loop is merely busy, turning load into wrong decisions.
            async with asyncio.timeout(self._timeout * BACKSTOP):
                outcome = await reserve
        except asyncio.CancelledError:
            # The caller left (its client disconnected) while the script was on its way: it may
            # still run, and nobody would settle it. Release it; whichever of the two runs
            # first, the reservation ends released (a released marker refuses a late reserve).
            self._backlog.run(self._settlement.release(replace(reservation)))
            raise
        except (TimeoutError, StoreTimeout) as exc:  # TimeoutError: the backstop
            # The script may still have run: release it (settling is idempotent).
            log.info("quota store timed out: deciding locally")
            breaker.timed_out()
            self._backlog.run(self._settlement.release(replace(reservation)))
            raise _StoreDown from exc
        except StoreUnavailable as exc:
            if self._outage.failed(exc):
                log.warning("quota store unreachable (%r): deciding locally", exc)
                # Pooled connections opened before the failure would each fail once more after
                # a Redis restart, and each failure would trip the breaker again.
                self._backlog.run(self._store.drop_idle_connections())
            raise _StoreDown from exc
        breaker.reset()
        return _decided(demand, reservation, outcome, now)

    async def _local(
        self, demand: Demand, reservation: Reservation, now: float, fallback: bool
    ) -> Admission:
        store = self._store.quota
        if fallback:
            store = self._outage.local
            self._outage.localize(demand, reservation)
        try:
            outcome = await self._reserve_in(store, demand, reservation)
        except asyncio.CancelledError:
            self._backlog.run(self._settlement.release(replace(reservation)))
            raise
        return _decided(demand, reservation, outcome, now)

    async def _reserve_in(
        self, store: QuotaStore, demand: Demand, reservation: Reservation
    ) -> ReserveResult:
        """Reserve what the demand asks for under the reservation's marker."""
        return await store.reserve(
            reservation.marker,
            reservation.id,
            demand.holds,
            [s.slot for s in demand.slots],
            self._lease,
            demand.windows,
        )
