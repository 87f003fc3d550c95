"""The quota engine's one face, used by the middleware, the handlers and the admin API.

Before the upstream call, one atomic reservation checks every limit of the call and counts it
in all of them or none (`admission.py`): one Redis round trip, whose answer also carries what
the RateLimit headers report, or none for a call whose hot request-rate windows this replica
has leased (`leases.py`, `unrecorded.py`). After the call, one settle charges the real usage
and records it (`settlement.py`): one more round trip. While Redis is unreachable, the same
decisions are taken in process on this replica's share of each limit (`outage.py`); settlements
run in tasks of their own (`backlog.py`), so no answer waits for them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from edge.context import RequestContext
from edge.errors import GatewayError
from edge.identity_cache import IdentityCache
from edge.quota.admission import Admitter
from edge.quota.backlog import Backlog
from edge.quota.decision import Admission
from edge.quota.demand import QuotaPlan, Scope
from edge.quota.denials import ACCOUNT_BLOCKED
from edge.quota.leases import Leases
from edge.quota.outage import Outage
from edge.quota.plan_cache import PlanCache
from edge.quota.priors import Priors
from edge.quota.reservation import Reservation
from edge.quota.settlement import Settlement
from edge.settings import QuotaSettings
from edge.store import Store, StoreUnavailable
from edge.store.records import Account, KeyRecord
from edge.usage import Usage
from policies.catalog import Catalog, Model
from policies.leases import LeasePolicy
from policies.quota_plans import Plans

log = logging.getLogger(__name__)

__all__ = ["Admission", "QuotaService", "Reservation"]


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
        self.settings = settings or QuotaSettings()
        self.timeout = redis_timeout
        self._plans = PlanCache(self.settings)
        self._after_settle: list[Callable[[Reservation], Awaitable[None]]] = []
        self._outage = Outage(store, self.settings)
        self._backlog = Backlog()
        retention = self.settings.usage_retention_days * 86400
        self._settlement = Settlement(store, self._outage, self._backlog, catalog, retention)
        self.priors = Priors(store)
        self._leases = None
        if store.leases is not None and self.settings.leases:
            self._leases = Leases(store.leases, self._backlog, LeasePolicy())
        self._admitter = Admitter(
            store,
            self._outage,
            self._backlog,
            self._settlement,
            lease=self.settings.reservation_ttl,
            timeout=redis_timeout,
            priors=self.priors,
            leases=self._leases,
        )

    @property
    def store(self) -> Store:
        """The store the quotas count in."""
        return self._store

    @property
    def store_trusted(self) -> bool:
        """Whether admission asks the store now (not deciding locally during an outage)."""
        return self._outage.trusted

    def fallback_counts(self) -> Mapping[str, int]:
        """Fallback decisions so far, by kind (read by the metrics exporter)."""
        return self._outage.fallbacks.snapshot()

    @property
    def plans(self) -> Plans:
        """The configured plans."""
        return self.settings.plans

    def scopes(self, account: Account, key: KeyRecord | None) -> list[Scope]:
        """The key's own limits (its plan, if any, plus overrides), then the account's."""
        return self._plans.scopes(account, key)

    def plan(self, account: Account, key: KeyRecord | None) -> QuotaPlan:
        """The caller's limits (derived once per cached identity record)."""
        return self._plans.plan(account, key)

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

    async def admit(
        self, ctx: RequestContext, model: Model | None, generates: bool = True
    ) -> Admission:
        """Admit a call to `model` (resolved by the caller, the one the handler will call) or
        raise 429 (a limit) / 503 (a budget that cannot be checked). The input estimate counts
        the body and a chained transcript (`ctx.history_bytes`)."""
        account, key = await self.caller(ctx)
        plan = self.plan(account, key)
        return await self._admitter.admit(ctx, (account, key), plan, model, generates)

    async def settle(self, ctx: RequestContext) -> None:
        """Settle a request's reservation with its real usage (unless a background run took it)."""
        if ctx.reservation is None or ctx.reservation_detached:
            return
        ctx.reservation.model = ctx.model or ctx.reservation.model
        await self.settle_reservation(ctx.reservation, ctx.usage)

    async def settle_reservation(self, reservation: Reservation, usage: Usage | None) -> None:
        """Charge the real usage (refunding the rest of the reservation) and record it; then
        whatever watches settled calls (budget alerts) sees it."""
        self._admitter.ended(reservation)
        await self._settlement.settle(reservation, usage)
        for watcher in self._after_settle:
            try:
                await watcher(reservation)
            except StoreUnavailable as exc:  # the call is settled; only its watchers missed it
                log.warning("a settled call's watcher could not read the store: %s", exc)

    def after_settle(self, watcher: Callable[[Reservation], Awaitable[None]]) -> None:
        """Call `watcher` with each reservation once it has settled."""
        self._after_settle.append(watcher)

    def settle_soon(self, ctx: RequestContext) -> None:
        """Settle in a task of its own: the answer does not wait for the store, a cancelled
        request still settles, and `wait_settled` lets shutdown finish the pending ones."""
        if ctx.reservation is not None and not ctx.reservation_detached:
            self._backlog.run(self.settle(ctx))

    async def close(self) -> None:
        """Give back this replica's request-rate leases and record the leased calls still
        running (at shutdown, before `wait_settled`)."""
        self._admitter.close()
        if self._leases is not None:
            await self._leases.close()

    async def wait_settled(self, limit: float) -> None:
        """Wait (at most `limit` seconds) for the settlements and releases still running."""
        await self._backlog.wait(limit)
