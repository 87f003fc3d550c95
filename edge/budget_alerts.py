"""Budget alerts: after a call settles, its budgets' use is read back, reported as the
`edge_budget_used_ratio` gauge, and each threshold reached (50/80/100 % unless a plan or an
override sets `alert_thresholds`) is claimed in the store, so that one replica, once per
budget window, POSTs a signed JSON webhook (retried with backoff).

Nothing here runs on the request's path: settling already happens in the background.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from typing import Any

import aiohttp
import orjson

from edge.identity_cache import IdentityCache
from edge.metrics import Metrics
from edge.quota.reservation import Reservation
from edge.quota.service import QuotaService
from edge.store import StoreUnavailable
from policies.budget_alerts import (
    DEFAULT_THRESHOLDS,
    SIGNATURE_HEADER,
    claim_key,
    reached,
    signature,
)
from policies.quota_estimate import Estimate

log = logging.getLogger(__name__)
PAUSES = (1.0, 2.0, 4.0, 8.0, 16.0)  # between delivery attempts (jittered): six in all
DELIVERY_TIMEOUT = 10.0
MAX_REMEMBERED = 10_000  # claims this process knows are taken (saves asking the store again)
_NO_CALL = Estimate(0, 0, 0)


class BudgetAlerts:
    """Reads budgets back after settlement; claims and sends the alerts they call for."""

    def __init__(
        self,
        quota: QuotaService,
        identity: IdentityCache,
        metrics: Metrics,
        session: aiohttp.ClientSession,
        url: str | None,
        secret: bytes,
    ) -> None:
        self._quota = quota
        self._identity = identity
        self._metrics = metrics
        self._session = session
        self._url = url
        self._secret = secret
        self._taken: dict[str, float] = {}  # claim key -> when its window ends
        self._sending: set[asyncio.Task[None]] = set()

    async def check(self, reservation: Reservation) -> None:
        """Read the settled call's budgets; alert on each threshold newly reached."""
        account = await self._identity.account(reservation.account)
        if account is None:
            return
        key = await self._identity.key(reservation.key_id) if reservation.key_id else None
        plan = self._quota.plan(account, key)
        now = time.time()
        if not plan.counters:
            return
        thresholds = {s.name: s.rules.alert_thresholds for s in plan.scopes}
        try:
            counters = plan.demand(_NO_CALL, now, await self._quota.priors.of(plan, now)).counters
            today, _ = await self._quota.store.quota.read([c.hold.key for c in counters], [])
            for counter, value in zip(
                counters, (t + c.prior for t, c in zip(today, counters, strict=True)), strict=True
            ):
                limit = counter.rule.limit
                ratio = value / limit if limit else 0.0
                self._metrics.budget_used(account.id, counter.scope, counter.rule.field, ratio)
                if self._url is None:
                    continue
                wanted = thresholds.get(counter.scope) or DEFAULT_THRESHOLDS
                for threshold in reached(value, limit, wanted):
                    claim = claim_key(counter.hold.key, threshold)
                    if await self._claim(claim, counter.ends or counter.hold.expires_at, now):
                        body = _payload(reservation, counter, value, threshold, now)
                        self._send(body)
        except StoreUnavailable as exc:
            log.warning("budget alerts not checked (store unavailable): %s", exc)

    async def _claim(self, claim: str, window_end: float, now: float) -> bool:
        if self._taken.get(claim, 0.0) > now:
            return False
        if len(self._taken) >= MAX_REMEMBERED:
            self._taken = {k: end for k, end in self._taken.items() if end > now}
        self._taken[claim] = window_end
        # Kept a minute past the window's end: a replica whose clock lags cannot claim again.
        return await self._quota.store.quota.claim(claim, window_end - now + 60)

    def _send(self, body: dict[str, Any]) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(body))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _deliver(self, payload: dict[str, Any]) -> None:
        """POST the alert until the receiver takes it (2xx) or refuses it for good (4xx)."""
        assert self._url is not None
        body = orjson.dumps(payload)
        for attempt in range(len(PAUSES) + 1):
            if attempt:
                await asyncio.sleep(PAUSES[attempt - 1] * random.uniform(0.75, 1.25))  # noqa: S311
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: signature(self._secret, int(time.time()), body),
                "Edge-Delivery": payload["id"],
            }
            try:
                async with self._session.post(
                    self._url,
                    data=body,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=DELIVERY_TIMEOUT),
                ) as resp:
                    if resp.status < 300:
                        return
                    if resp.status < 500 and resp.status not in (408, 429):
                        log.error("budget alert refused by its receiver: HTTP %d", resp.status)
                        return
                    reason = f"HTTP {resp.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                reason = type(exc).__name__
            log.warning("budget alert delivery %d failed: %s", attempt + 1, reason)
        log.error("budget alert %s not delivered after %d attempts", payload["id"], len(PAUSES) + 1)

    async def close(self) -> None:
        """Give deliveries in flight a moment, then stop them (at shutdown)."""
        if self._sending:
            await asyncio.wait(set(self._sending), timeout=DELIVERY_TIMEOUT)
        for task in set(self._sending):
            task.cancel()


def _payload(
    reservation: Reservation, counter: Any, used: int, threshold: float, now: float
) -> dict[str, Any]:
    rule = counter.rule
    scale = 1_000_000 if rule.kind == "cost" else 1
    return {
        "id": f"alert_{secrets.token_hex(12)}",
        "type": "budget.threshold_reached",
        "created_at": int(now),
        "account": reservation.account,
        "scope": counter.scope,
        "key_id": reservation.key_id if counter.scope == "key" else None,
        "budget": rule.field,
        "unit": "usd" if rule.kind == "cost" else "tokens",
        "period": rule.period,
        "threshold": threshold,
        "used": used / scale,
        "limit": rule.limit / scale,
        "resets_at": int(counter.ends or counter.hold.expires_at),
    }
