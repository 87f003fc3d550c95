"""One model, several deployments: each call tries them in the order `policies.deployments`
gives from their shared health and use, and retries another (or, the only one left, the
same after a backoff) on a failure before its first byte, never after. A failing deployment
is cooled down in the store and the news published, so every replica leaves it alone from
its next call until the cooldown lifts.

A process reads a model's shared state at most once per `REFRESH` (a store round trip costs
more CPU than choosing does) and at once after a cooldown is published; its use counts go to
the store in one batch per `FLUSH`.

The call's quota reservation belongs to the call, not to an attempt: however many attempts it
takes, it is settled once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

from edge.context import RequestContext
from edge.deployment_metrics import DeploymentMetrics
from edge.errors import GatewayError
from edge.routing import DeploymentRoute, Route
from edge.store.base import Invalidation, StoreUnavailable
from edge.store.deployments import DeploymentStore
from edge.tracing import begin_attempt
from policies.cooldown import (
    ATTRIBUTABLE,
    RetryBounds,
    cooldown,
    provider_delay,
    shared_fault,
    streak,
)
from policies.deployments import IDLE, Deployment, Load, plan

log = logging.getLogger(__name__)
Attempt = Callable[[Route], Awaitable[web.StreamResponse]]
# Round-robin credit is kept per model and set of deployments; past this many sets (access
# lists narrowing a model in many ways) it starts afresh rather than grow.
MAX_TURNS = 4096
REFRESH = 0.1
FLUSH = 0.1
TOPIC = "deployments:"  # + the model id: its deployments' health changed
_OWN_ERRORS = frozenset({"not_admitted", "provider_not_configured", "upstream_too_large"})
_TRANSPORT = {
    "upstream_unreachable": "unreachable",
    "upstream_timeout": "timeout",
    "upstream_interrupted": "interrupted",
}


def fault_of(status: int, code: str | None, retry: bool | None = None) -> str | None:
    """The deployment's kind of failure (a rate limit, a 5xx, the transport), or None when
    the failure is the request's or the gateway's own: another deployment would not help."""
    if code in _TRANSPORT:
        return _TRANSPORT[code]
    if code in _OWN_ERRORS or code == "REQUEST_LIMIT_EXCEEDED" or retry is False:
        return None
    if status == 429:
        return "rate_limited"
    return "server_error" if status >= 500 else None


def no_deployment(model: str, loads: Iterable[Load], now: float) -> GatewayError:
    """503 when every deployment of a model is cooling down, with when the first lifts (a
    fallback model, when the call has one, answers instead)."""
    soonest = min((load.cooled_until for load in loads), default=now) - now
    return GatewayError(
        503,
        f"Every deployment of model {model} is cooling down after failures; retry shortly.",
        code="deployments_unavailable",
        headers={"Retry-After": str(max(1, int(soonest + 0.999)))},
    )


class Balancer:
    """Orders, tries and keeps the health of deployments (one per process)."""

    def __init__(
        self,
        store: DeploymentStore,
        metrics: DeploymentMetrics,
        invalidation: Invalidation | None = None,
        bounds: RetryBounds | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._invalidation = invalidation
        self._bounds = bounds or RetryBounds()
        self._clock = clock  # wall time: cooldowns are compared across replicas
        # Per model and set of deployments: round-robin credit, and the last state read
        # (when, by the monotonic clock, and what).
        self._turns: dict[tuple[str, ...], list[float]] = {}
        self._mirror: dict[tuple[str, ...], tuple[float, list[Load]]] = {}
        self._unsent: dict[str, dict[str, tuple[int, int]]] = {}  # use not yet written
        # Per model and deployment: the account and time of its last 5xx or timeout not yet
        # blamed on the deployment (`policies.cooldown.shared_fault`).
        self._suspects: dict[tuple[str, str], tuple[str | None, float]] = {}
        self._flusher: asyncio.Task[None] | None = None
        if invalidation is not None:
            invalidation.subscribe(self.heard)

    def heard(self, topic: str) -> None:
        """A published change: re-read that model's state (everything's after a reconnect)."""
        if topic == "*":
            self._mirror.clear()
        elif topic.startswith(TOPIC):
            self._forget(topic.removeprefix(TOPIC))

    def _forget(self, model: str) -> None:
        for key in [k for k in self._mirror if k[0] == model]:
            del self._mirror[key]

    async def close(self) -> None:
        """Write the use not yet written (at shutdown, before the store closes)."""
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await self._flush()

    async def order(self, route: Route, sticky: str | None = None) -> tuple[list[int], list[Load]]:
        """The deployments to try (indexes into `route.choices`) and their state now."""
        deps = [c.deployment for c in route.choices]
        names = tuple(d.name for d in deps)
        now = self._clock()
        key = (route.model.id, *names)
        loads = await self._loads(key, deps, now)
        turn = self._turns.get(key)
        if turn is None:
            if len(self._turns) >= MAX_TURNS:
                self._turns.clear()
            turn = self._turns[key] = [0.0] * len(deps)
        return plan(deps, loads, now, turn, sticky), loads

    async def _loads(self, key: tuple[str, ...], deps: list[Deployment], now: float) -> list[Load]:
        read = time.monotonic()
        found = self._mirror.get(key)
        if found is not None and read - found[0] < REFRESH:
            return found[1]
        try:
            loads = await self._store.loads(key[0], key[1:], now, any(d.limited for d in deps))
        except StoreUnavailable as exc:
            # Without the shared state every deployment counts as healthy and idle: the call
            # goes on, as the weights alone would send it.
            log.warning("deployment state unavailable for %s: %s", key[0], exc)
            return [IDLE] * len(deps)
        if len(self._mirror) >= MAX_TURNS:
            self._mirror.clear()
        self._mirror[key] = (read, loads)
        return loads

    async def serve(
        self, ctx: RequestContext, route: Route, attempt: Attempt
    ) -> web.StreamResponse:
        """Answer with the model's deployments, retrying before the first byte only."""
        order, loads = await self.order(route, ctx.sticky)
        if not order:
            raise no_deployment(route.model.id, loads, self._clock())
        bounds = self._bounds
        tries = order[: bounds.attempts]
        if len(tries) == 1 and bounds.attempts > 1:
            tries.append(tries[0])  # the only one left: once more, after a backoff
        ends = time.monotonic() + bounds.budget  # no attempt starts after this
        model = route.model.id
        for n, index in enumerate(tries):
            choice = route.choices[index]
            following = tries[n + 1] if n + 1 < len(tries) else None
            try:
                response = await self._attempt(ctx, model, choice, attempt)
            except GatewayError as err:
                fault = fault_of(err.status, err.code, err.retry)
                if fault is not None:
                    await self._failed(ctx, model, choice.deployment, loads[index], fault, err)
                if fault is None or not self._again(ctx, fault, index, following, ends):
                    raise
            else:
                fault = None
                if not response.prepared:
                    fault = fault_of(response.status, None)
                elif ctx.error is not None:  # a stream cut after its start: answered, failed
                    fault = fault_of(ctx.error.status, ctx.error.code, ctx.error.retry)
                if fault is None:
                    await self._answered(model, choice.deployment, loads[index])
                    return response
                # A passthrough relays the provider's own 429 or 5xx as it is, unraised.
                await self._failed(
                    ctx, model, choice.deployment, loads[index], fault, response.headers.items()
                )
                if response.prepared or not self._again(ctx, fault, index, following, ends):
                    return response
            log.info(
                "deployment %s of %s failed (%s); trying again",
                choice.deployment.name,
                model,
                fault,
                extra={"request_id": ctx.request_id},
            )
            if following == index:
                await asyncio.sleep(min(bounds.backoff, max(0.0, ends - time.monotonic())))
        raise AssertionError("unreachable: the last attempt returns or raises")

    @staticmethod
    def _again(
        ctx: RequestContext, fault: str, index: int, following: int | None, ends: float
    ) -> bool:
        """Whether another attempt may follow: one is planned, no byte has reached the client,
        the time budget is not spent, and it is not the same deployment the provider just
        asked to be left alone."""
        if following is None or ctx.first_byte_at is not None or time.monotonic() >= ends:
            return False
        return not (following == index and fault == "rate_limited")

    async def _attempt(
        self, ctx: RequestContext, model: str, choice: DeploymentRoute, attempt: Attempt
    ) -> web.StreamResponse:
        ctx.provider = choice.route.provider.name
        ctx.deployment = choice.deployment.name
        ctx.error = None  # an earlier attempt's error is not this one's
        begin_attempt(choice.route)
        started = time.perf_counter()
        try:
            return await attempt(choice.route)
        finally:
            self._metrics.attempt(model, choice.deployment.name, time.perf_counter() - started)
            if choice.deployment.limited:
                self._count(model, choice.deployment.name, ctx)

    def _count(self, model: str, name: str, ctx: RequestContext) -> None:
        """Add an attempt and its tokens to the deployment's minute: kept here, and written
        with every other one of the next `FLUSH` in one batch (the answer never waits)."""
        tokens = ctx.usage.total if ctx.usage is not None else 0
        counts = self._unsent.setdefault(model, {})
        requests, used = counts.get(name, (0, 0))
        counts[name] = (requests + 1, used + tokens)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush_soon())

    async def _flush_soon(self) -> None:
        await asyncio.sleep(FLUSH)
        await self._flush()

    async def _flush(self) -> None:
        unsent, self._unsent = self._unsent, {}
        now = self._clock()
        for model, counts in unsent.items():
            await self._quietly(self._store.used(model, counts, now))

    async def _answered(self, model: str, deployment: Deployment, load: Load) -> None:
        if load.strikes:  # its streak ends: the next failure starts a short cooldown again
            await self._quietly(self._store.recovered(model, deployment.name))
            self._forget(model)

    async def _failed(
        self,
        ctx: RequestContext,
        model: str,
        deployment: Deployment,
        load: Load,
        fault: str,
        said: GatewayError | Iterable[tuple[str, str]],
    ) -> None:
        """Count the failure and cool the deployment down, for every replica."""
        self._metrics.error(model, deployment.name, fault)
        now = self._clock()
        if not self._blamed(model, deployment.name, fault, ctx.account, now):
            return  # this call still tries a peer; the deployment stays in every one's plan
        headers = said.headers.items() if isinstance(said, GatewayError) else said
        asked = provider_delay(headers, now) if fault == "rate_limited" else None
        strikes = streak(load.strikes, load.cooled_until, now)
        seconds = cooldown(strikes, asked)
        if seconds <= 0:
            return
        self._metrics.cooled(model, deployment.name)
        log.warning(
            "deployment %s of %s cooling down for %.1f s after %s",
            deployment.name,
            model,
            seconds,
            fault,
        )
        await self._quietly(self._store.cool(model, deployment.name, now + seconds, strikes))
        self._forget(model)
        if self._invalidation is not None:
            await self._quietly(self._invalidation.publish(TOPIC + model))

    def _blamed(self, model: str, name: str, fault: str, account: str | None, now: float) -> bool:
        """Whether the failure is the deployment's, to be cooled for everyone; a 5xx or a
        timeout is remembered as a suspect until another account's call fails there too."""
        if fault not in ATTRIBUTABLE:
            return True
        key = (model, name)
        if shared_fault(fault, account, self._suspects.get(key), now):
            del self._suspects[key]
            return True
        if len(self._suspects) >= MAX_TURNS:
            self._suspects.clear()
        self._suspects[key] = (account, now)
        return False

    @staticmethod
    async def _quietly(call: Awaitable[None]) -> None:
        """A health or use write the call does not wait on the outcome of: a store failure is
        logged, and the answer goes on."""
        try:
            await call
        except StoreUnavailable as exc:
            log.warning("deployment state not written: %s", exc)


BALANCER: web.AppKey[Balancer] = web.AppKey("balancer", Balancer)
