"""Admission before a request runs, and settlement of its real usage after."""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.exceptions import RedisError

from edge.context import RequestContext
from edge.errors import GatewayError
from edge.identity_cache import IdentityCache
from edge.store import Store, StoreUnavailable
from edge.usage import Usage
from policies.catalog import Catalog
from policies.ratelimit import LimitState, denial_message, ratelimit_headers, retry_after

ACCOUNT_BLOCKED = GatewayError(
    429,
    "Your account's AI Gateway quota is blocked. Contact your administrator.",
    code="REQUEST_LIMIT_EXCEEDED",
    type="rate_limit_error",
    headers={"Retry-After": "3600"},
)


def limits_storage(store: Store) -> Storage:
    """The `limits` storage for a store: in-process, or Redis sharing the gateway's pool."""
    if store.redis is None:
        return MemoryStorage()
    return RedisStorage(
        "async+redis://",
        implementation="redispy",
        connection_pool=store.redis.connection_pool,  # type: ignore[arg-type]
    )


@dataclass(slots=True)
class Reservation:
    """Tokens and cost held for one call until it settles.

    Serializable, so a background run finished by another process can settle it.
    """

    id: str
    account: str
    key_id: str | None
    model: str | None
    tokens: int = 0
    cost_micros: int = 0
    created_at: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Reservation:
        """Parse a stored reservation."""
        return cls(**data)


class Admission:
    """An admitted request: the limit states to report, and its reservation."""

    def __init__(self, states: list[LimitState], reservation: Reservation) -> None:
        self.states = states
        self.reservation = reservation

    @property
    def headers(self) -> dict[str, str]:
        """RateLimit headers for our own tightest limit."""
        return ratelimit_headers(self.states)


class QuotaService:
    """Decides whether a request may run, and records what it used."""

    def __init__(self, store: Store, identity: IdentityCache, catalog: Catalog) -> None:
        self._store = store
        self._identity = identity
        self._catalog = catalog
        self._limiter = MovingWindowRateLimiter(limits_storage(store))

    async def admit(self, ctx: RequestContext) -> Admission:
        """Refuse with 429 when a limit is exhausted or the account is blocked."""
        principal = ctx.principal
        if principal is None or principal.account is None:
            raise GatewayError(401, "Invalid authentication credentials", code="invalid_api_key")
        account = await self._identity.account(principal.account)
        if account is None or account.blocked:
            raise ACCOUNT_BLOCKED
        states: list[LimitState] = []
        if principal.kind == "key":
            key = await self._identity.key(principal.subject)
            rpm = key.quota.get("requests_per_minute") if key else None
            if isinstance(rpm, int) and rpm > 0:
                states.append(
                    await self._hit(RateLimitItemPerMinute(rpm), "key", principal.subject)
                )
        reservation = Reservation(
            id=secrets.token_hex(8),
            account=principal.account,
            key_id=principal.subject if principal.kind == "key" else None,
            model=ctx.model,
        )
        return Admission(states, reservation)

    async def _hit(self, item: RateLimitItem, *ids: str) -> LimitState:
        try:
            allowed = await self._limiter.hit(item, *ids)
            stats = await self._limiter.get_window_stats(item, *ids)
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(str(exc)) from exc
        state = LimitState(
            policy="key-rpm",
            description="requests per minute",
            limit=item.amount,
            remaining=stats.remaining,
            window=item.get_expiry(),
            reset=max(0.0, stats.reset_time - time.time()),
        )
        if not allowed:
            raise GatewayError(
                429,
                denial_message(state),
                code="REQUEST_LIMIT_EXCEEDED",
                type="rate_limit_error",
                headers={
                    "Retry-After": str(retry_after(state.reset)),
                    **ratelimit_headers([state]),
                },
            )
        return state

    async def settle(self, ctx: RequestContext) -> None:
        """Settle a request's reservation with its real usage (unless a background run took it)."""
        if ctx.reservation is None or ctx.reservation_detached:
            return
        ctx.reservation.model = ctx.model or ctx.reservation.model
        await self.settle_reservation(ctx.reservation, ctx.usage)

    async def settle_reservation(self, reservation: Reservation, usage: Usage | None) -> None:
        """Charge the real usage (refunding the rest of the reservation) and record it."""
        usage = usage or Usage()
        model = self._catalog.resolve(reservation.model) if reservation.model else None
        cost = (
            model.price.cost(usage.input_tokens, usage.output_tokens, usage.cached_tokens)
            if model
            else 0.0
        )
        scopes = [f"account:{reservation.account}"]
        if reservation.key_id:
            scopes.append(f"key:{reservation.key_id}")
        counts = {
            "requests": 1,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cached_tokens": usage.cached_tokens,
            "cost_micros": round(cost * 1_000_000),
        }
        await self._store.usage.record(scopes, counts, time.time())

    def settle_later(self, ctx: RequestContext) -> asyncio.Task[None]:
        """Settle in a task of its own, so a cancelled request still gets its usage recorded."""
        return asyncio.get_running_loop().create_task(self.settle(ctx))
