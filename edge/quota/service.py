"""Admission before a request runs, and settlement of its real usage after.

Before the upstream call, one atomic reservation checks every limit of the call (request-rate
windows, token and cost counters, in-flight slots) and counts it in all of them or none: one
Redis round trip, whose answer also carries what the RateLimit headers report. After the call,
one settle charges the real usage and records it: one more round trip. While Redis is
unreachable, the same decisions are taken in process on this replica's share of each limit.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from edge.context import RequestContext
from edge.errors import GatewayError
from edge.identity_cache import IdentityCache
from edge.quota.decision import Admission, admitted_states, refusal
from edge.quota.demand import Demand, QuotaPlan, RateCheck, Scope, SlotCheck, quota_plan
from edge.quota.denials import ACCOUNT_BLOCKED, BUDGET_UNAVAILABLE
from edge.quota.fallback import Breaker, FallbackCounter
from edge.quota.reservation import Reservation
from edge.settings import QuotaSettings
from edge.store import Store, StoreTimeout, StoreUnavailable
from edge.store.quota import QuotaStore, ReserveResult, Slot
from edge.store.quota_memory import MemoryQuota
from edge.store.records import Account, KeyRecord
from edge.store.usage import UsageRecord, day_of
from edge.usage import Usage
from policies.catalog import Catalog, Model
from policies.quota import Rules, estimate_values, rules_from
from policies.quota_estimate import cost_micros, estimate
from policies.quota_plans import Plans

__all__ = ["Admission", "QuotaService", "Reservation"]
log = logging.getLogger(__name__)
BACKSTOP = 10  # the whole decision's deadline, in Redis timeouts
MAX_PLANS = 100_000  # as many as the identity cache holds records
# Pauses before each settlement retry (jittered by ±25%): at most 76 s in all, less than the
# store keeps a settled marker (SETTLED_KEEP_SECONDS), so a retry never settles a call twice.
SETTLE_PAUSES = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
MAX_PENDING_SETTLEMENTS = 10_000
RETRY_CONCURRENCY = 8


def _usage_record(reservation: Reservation, usage: Usage, cost: int) -> UsageRecord:
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
    return UsageRecord(tuple(scopes), counts, day_of(time.time()))


class _StoreDown(Exception):
    """The shared store did not answer in time: decide locally."""


class QuotaService:
    """Decides whether a request may run, and records what it used."""

    def __init__(
        self,
        store: Store,
        identity: IdentityCache,
        catalog: Catalog,
        settings: QuotaSettings | None = None,
        redis_timeout: float = 0.1,
    ) -> None:
        self._store = store
        self._identity = identity
        self._catalog = catalog
        self.settings = settings or QuotaSettings()
        self.timeout = redis_timeout
        self._local: QuotaStore = MemoryQuota()  # while the shared store is down
        self.fallbacks = FallbackCounter()
        self._breaker = Breaker()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._retry_slots = asyncio.Semaphore(RETRY_CONCURRENCY)
        # (account id, key id) -> the records a plan was derived from, and the plan.
        self._plans: dict[tuple[str, str | None], tuple[Account, KeyRecord | None, QuotaPlan]] = {}

    @property
    def store(self) -> Store:
        """The store the quotas count in."""
        return self._store

    @property
    def store_trusted(self) -> bool:
        """Whether admission asks the store now (not deciding locally during an outage)."""
        return not self._store.shared or self._breaker.allows()

    def fallback_counts(self) -> Mapping[str, int]:
        """Fallback decisions so far, by kind (read by the metrics exporter)."""
        return self.fallbacks.snapshot()

    @property
    def plans(self) -> Plans:
        """The configured plans."""
        return self.settings.plans

    def scopes(self, account: Account, key: KeyRecord | None) -> list[Scope]:
        """The key's own limits (its plan, if any, plus overrides), then the account's."""
        plans = self.settings.plans
        out = []
        if key is not None:
            values = plans.merged(key.plan, key.quota) if key.plan else dict(key.quota)
            out.append(Scope("key", f"key:{key.id}", rules_from(values)))
        out.append(Scope("account", "account", plans.rules(account.plan, account.quota)))
        return out

    def _estimate_rules(self, account: Account, key: KeyRecord | None) -> Rules:
        plans = self.settings.plans
        key_values = None
        if key is not None:
            key_values = plans.merged(key.plan, key.quota) if key.plan else dict(key.quota)
        return rules_from(estimate_values(plans.merged(account.plan, account.quota), key_values))

    def plan(self, account: Account, key: KeyRecord | None) -> QuotaPlan:
        """The caller's limits, derived once per cached record: the identity cache hands out the
        same record objects until they change or go stale, so a plan built from these very
        objects is current, and a quota change reaches it as fast as it reaches the cache."""
        name = (account.id, key.id if key is not None else None)
        found = self._plans.get(name)
        if found is not None and found[0] is account and found[1] is key:
            return found[2]
        plan = quota_plan(
            account.id, self.scopes(account, key), self._estimate_rules(account, key)
        )
        if len(self._plans) >= MAX_PLANS:
            self._plans.clear()
        self._plans[name] = (account, key, plan)
        return plan

    async def caller(self, ctx: RequestContext) -> tuple[Account, KeyRecord | None]:
        """The calling account and key (from the identity cache); 429 for a blocked account."""
        principal = ctx.principal
        if principal is None or principal.account is None:
            raise GatewayError(401, "Invalid authentication credentials", code="invalid_api_key")
        account = await self._identity.account(principal.account)
        if account is None or account.blocked:
            raise ACCOUNT_BLOCKED
        key = await self._identity.key(principal.subject) if principal.kind == "key" else None
        return account, key

    def _model(self, name: object) -> Model | None:
        return self._catalog.resolve(name) if isinstance(name, str) and name else None

    async def admit(
        self, ctx: RequestContext, model: Model | None, generates: bool = True
    ) -> Admission:
        """Admit a call to `model` (resolved by the caller, the one the handler will call) or
        raise 429 (a limit) / 503 (a budget that cannot be checked). The input estimate counts
        the body and a chained transcript (`ctx.history_bytes`)."""
        account, key = await self.caller(ctx)
        payload = ctx.payload if isinstance(ctx.payload, dict) else {}
        plan = self.plan(account, key)
        sent = len(ctx.body or b"") + ctx.history_bytes
        # The cap is read from the fields of the call's own API (another API's is not sent).
        endpoint = ctx.routes[0].client_api if ctx.routes else None
        est = estimate(sent, payload, plan.estimate_rules, model, endpoint, generates)
        now = time.time()
        demand = plan.demand(est, now)
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
        if self._store.shared and self._breaker.allows():
            try:
                return await self._admit_shared(demand, reservation, now)
            except _StoreDown:
                pass
        return await self._admit_local(demand, reservation, now, fallback=self._store.shared)

    async def _admit_shared(
        self, demand: Demand, reservation: Reservation, now: float
    ) -> Admission:
        reserve = self._reserve_in(self._store.quota, demand, reservation)
        try:
            # The Redis client's own timeouts bound the call (connect, then answer); this is only
            # a backstop. A deadline as tight as those timeouts would also fire when this
            # process's event loop is merely busy, turning load into wrong decisions.
            async with asyncio.timeout(self.timeout * BACKSTOP):
                outcome = await reserve
        except asyncio.CancelledError:
            # The caller left (its client disconnected) while the script was on its way: it may
            # still run, and nobody would settle it. Release it; whichever of the two runs
            # first, the reservation ends released (a released marker refuses a late reserve).
            self._background(self._release(replace(reservation)))
            raise
        except (TimeoutError, StoreTimeout) as exc:  # TimeoutError: the backstop
            # The script may still have run: release it (settling is idempotent).
            log.info("quota store timed out: deciding locally")
            self._breaker.timed_out()
            self._background(self._release(replace(reservation)))
            raise _StoreDown from exc
        except StoreUnavailable as exc:
            was_closed = self._breaker.allows()
            self._breaker.failed(exc)
            if was_closed and not self._breaker.allows():
                log.warning("quota store unreachable (%r): deciding locally", exc)
                # Pooled connections opened before the failure would each fail once more after
                # a Redis restart, and each failure would trip the breaker again.
                self._background(self._store.drop_idle_connections())
            raise _StoreDown from exc
        self._breaker.reset()
        return await self._decide(demand, reservation, outcome, now)

    async def _admit_local(
        self, demand: Demand, reservation: Reservation, now: float, fallback: bool
    ) -> Admission:
        store = self._store.quota
        if fallback:
            store = self._local
            reservation.local = True
            if demand.counters:
                if not self.settings.budgets_fail_open:
                    self.fallbacks.record("budget_closed")
                    raise BUDGET_UNAVAILABLE
                self.fallbacks.record("budget_open")
                demand.counters = []
                reservation.holds = []
            demand.rates = [self._share(c) for c in demand.rates]
            if demand.rates:
                self.fallbacks.record("rate_local")
            if any(s.slot.limit is not None for s in demand.slots):
                self.fallbacks.record("concurrency_local")
            demand.slots = [self._share_slot(s) for s in demand.slots]
        try:
            outcome = await self._reserve_in(store, demand, reservation)
        except asyncio.CancelledError:
            self._background(self._release(replace(reservation)))
            raise
        return await self._decide(demand, reservation, outcome, now)

    async def _reserve_in(
        self, store: QuotaStore, demand: Demand, reservation: Reservation
    ) -> ReserveResult:
        """Reserve what the demand asks for under the reservation's marker."""
        return await store.reserve(
            reservation.marker,
            reservation.id,
            demand.holds,
            [s.slot for s in demand.slots],
            self.settings.reservation_ttl,
            demand.windows,
        )

    def _share(self, check: RateCheck) -> RateCheck:
        """This replica's share of a rate limit while the limits cannot be shared."""
        limit = max(1, check.rule.limit // self.settings.expected_replicas)
        return RateCheck(check.scope, check.rule, replace(check.window, limit=limit))

    def _share_slot(self, check: SlotCheck) -> SlotCheck:
        limit = check.slot.limit
        if limit is not None:
            limit = max(1, limit // self.settings.expected_replicas)
        return SlotCheck(check.scope, Slot(check.slot.key, limit))

    async def _decide(
        self, demand: Demand, reservation: Reservation, outcome: ReserveResult, now: float
    ) -> Admission:
        if outcome.admitted:
            return Admission(admitted_states(demand, outcome, now), reservation)
        raise refusal(demand, outcome, now)

    async def _release(self, reservation: Reservation) -> None:
        """Give back everything a reservation holds (a refused or failed call).

        A release running in the background gets a copy: the caller goes on to reuse the
        reservation for a local decision, which rewrites where and what it holds."""
        deltas = reservation.deltas(0, 0)
        if reservation.local:
            await self._local.settle(reservation.marker, reservation.id, deltas, reservation.slots)
        else:
            # Right after a timeout or a cancelled call: the store's state is already known to
            # the breaker, so a failure here only means trying again.
            await self._settle_shared(reservation, deltas, reservation.slots, None, judge=False)

    def _background(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settle(self, ctx: RequestContext) -> None:
        """Settle a request's reservation with its real usage (unless a background run took it)."""
        if ctx.reservation is None or ctx.reservation_detached:
            return
        ctx.reservation.model = ctx.model or ctx.reservation.model
        await self.settle_reservation(ctx.reservation, ctx.usage)

    async def settle_reservation(self, reservation: Reservation, usage: Usage | None) -> None:
        """Charge the real usage (refunding the rest of the reservation) and record it."""
        usage = usage or Usage()
        model = self._model(reservation.model)
        tokens = usage.input_tokens + usage.output_tokens
        cost = cost_micros(model, usage.input_tokens, usage.output_tokens, usage.cached_tokens)
        record = _usage_record(reservation, usage, cost)
        deltas = reservation.deltas(tokens, cost)
        if reservation.local:
            await self._local.settle(reservation.marker, reservation.id, deltas, reservation.slots)
            deltas, slots = [], []  # only the usage is left for the shared store
        else:
            slots = reservation.slots
        await self._settle_shared(reservation, deltas, slots, record)

    async def _settle_shared(
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
        if await self._try_settle(reservation, deltas, slots, record, judge):
            return
        # Only what holds something in the shared store is retried: a call decided locally
        # during an outage holds nothing there, and retrying every one of their usage records
        # would meet the store's return with a backlog as large as the outage's traffic.
        pauses = () if reservation.local else SETTLE_PAUSES
        for pause in pauses:
            if len(self._tasks) > MAX_PENDING_SETTLEMENTS:
                break  # a long outage must not hold an unbounded backlog in memory
            # Jittered, so that the settlements an outage held back do not all return at once.
            await asyncio.sleep(pause * random.uniform(0.75, 1.25))  # noqa: S311 (not a secret)
            # A few at a time: a backlog let loose in one pipeline would keep Redis busy past
            # the timeout of the admissions waiting behind it, and trip the breaker again.
            async with self._retry_slots:
                if await self._try_settle(reservation, deltas, slots, record, judge=False):
                    self.fallbacks.record("settle_late")
                    return
        self.fallbacks.record("settle_lost")
        if not reservation.local:  # an outage's local calls are counted, not logged one by one
            log.warning("reservation %s not settled; it expires charged", reservation.id)

    async def _try_settle(
        self,
        reservation: Reservation,
        deltas: list[tuple[str, int]],
        slots: list[str],
        record: UsageRecord | None,
        judge: bool,
    ) -> bool:
        """One settlement attempt. Only a first attempt's failure (`judge`) feeds the breaker:
        admission's own calls keep it accurate, and a retry only waits for it to close."""
        if self._store.shared and not self._breaker.allows():
            return False
        try:
            await self._store.quota.settle(
                reservation.marker, reservation.id, deltas, slots, record
            )
        except StoreUnavailable as exc:
            if judge:
                self._breaker.failed(exc)
                log.info("settlement failed (%r)", exc)
            return False
        return True

    def settle_soon(self, ctx: RequestContext) -> None:
        """Settle in a task of its own: the answer does not wait for the store, a cancelled
        request still settles, and `wait_settled` lets shutdown finish the pending ones."""
        if ctx.reservation is not None and not ctx.reservation_detached:
            self._background(self.settle(ctx))

    async def wait_settled(self, limit: float) -> None:
        """Wait (at most `limit` seconds) for the settlements and releases still running."""
        pending = set(self._tasks)
        if not pending:
            return
        _, late = await asyncio.wait(pending, timeout=limit)
        if late:
            log.warning("%d settlements unfinished at shutdown; they expire", len(late))
