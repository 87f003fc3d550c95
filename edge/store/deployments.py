"""Deployment health and use, shared by every replica: a cooldown written by one is obeyed by
all at their next call, and each deployment's requests and tokens of the current minute are
counted where every replica adds to them.

On Redis a model's state is two hashes in its own slot (`edge:dep:{<model>}` for cooldowns,
`edge:dep:{<model>}:m:<minute>` for the minute's use): one call's read is one round trip."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from edge.store.clients import Client
from edge.store.driver import DriverBacked
from policies.cooldown import MAX_COOLDOWN, STREAK_MEMORY
from policies.deployments import Load

PREFIX = "edge:dep:"
# A cooldown's record outlives it long enough for the streak to be remembered.
HEALTH_TTL = int(MAX_COOLDOWN + STREAK_MEMORY + 60)
MINUTE = 60
USAGE_TTL = 2 * MINUTE


def minute_of(now: float) -> int:
    """The fixed one-minute window a time falls in (provider limits are per minute)."""
    return int(now // MINUTE)


def health_key(model: str) -> str:
    """The hash of a model's cooldowns, in the model's slot (braces cannot break the tag)."""
    return f"{PREFIX}{{{_tag(model)}}}"


def usage_key(model: str, minute: int) -> str:
    """The hash of a model's use per deployment in one minute, in the model's slot."""
    return f"{PREFIX}{{{_tag(model)}}}:m:{minute}"


def _tag(model: str) -> str:
    return model.replace("{", "(").replace("}", ")")


def _int(value: object) -> int:
    if isinstance(value, bytes | str):
        try:
            return int(float(value))
        except ValueError:
            return 0
    return 0


def _float(value: object) -> float:
    if isinstance(value, bytes | str):
        try:
            return float(value)
        except ValueError:
            return 0.0
    return 0.0


class DeploymentStore(Protocol):
    """Cooldowns and per-minute use of deployments, by model and deployment name."""

    async def loads(self, model: str, names: Sequence[str], now: float, usage: bool) -> list[Load]:
        """Each named deployment's state now (its minute's use only when `usage`)."""

    async def cool(self, model: str, name: str, until: float, strikes: int) -> None:
        """Rest a deployment until `until` (epoch seconds), its streak now `strikes`."""

    async def recovered(self, model: str, name: str) -> None:
        """Forget a deployment's failure streak (it answered)."""

    async def used(self, model: str, counts: Mapping[str, tuple[int, int]], now: float) -> None:
        """Add requests and tokens (by deployment name) to the current minute's use."""


class MemoryDeployments:
    """One process's deployment state (`memory://`): bounded by the catalog, since only the
    current minute's use is kept."""

    def __init__(self) -> None:
        self._health: dict[tuple[str, str], tuple[float, int]] = {}
        self._minute = -1
        self._usage: dict[tuple[str, str], tuple[int, int]] = {}

    def _roll(self, now: float) -> None:
        minute = minute_of(now)
        if minute != self._minute:
            self._minute = minute
            self._usage.clear()

    async def loads(self, model: str, names: Sequence[str], now: float, usage: bool) -> list[Load]:
        """Each named deployment's state now (its minute's use only when `usage`)."""
        self._roll(now)
        out = []
        for name in names:
            until, strikes = self._health.get((model, name), (0.0, 0))
            requests, tokens = self._usage.get((model, name), (0, 0)) if usage else (0, 0)
            out.append(Load(until, strikes, requests, tokens))
        return out

    async def cool(self, model: str, name: str, until: float, strikes: int) -> None:
        """Rest a deployment until `until` (epoch seconds), its streak now `strikes`."""
        self._health[(model, name)] = (until, strikes)

    async def recovered(self, model: str, name: str) -> None:
        """Forget a deployment's failure streak (it answered)."""
        self._health.pop((model, name), None)

    async def used(self, model: str, counts: Mapping[str, tuple[int, int]], now: float) -> None:
        """Add requests and tokens (by deployment name) to the current minute's use."""
        self._roll(now)
        for name, (requests, tokens) in counts.items():
            had_requests, had_tokens = self._usage.get((model, name), (0, 0))
            self._usage[(model, name)] = (had_requests + requests, had_tokens + max(tokens, 0))


class RedisDeployments(DriverBacked):
    """Deployment state in Redis, shared by every replica."""

    def __init__(self, redis: Client) -> None:
        self._redis = redis

    async def loads(self, model: str, names: Sequence[str], now: float, usage: bool) -> list[Load]:
        """Each named deployment's state now (its minute's use only when `usage`)."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.hmget(health_key(model), [f"{n}:{f}" for n in names for f in ("until", "strikes")])
        if usage:
            fields = [f"{n}:{f}" for n in names for f in ("r", "t")]
            pipe.hmget(usage_key(model, minute_of(now)), fields)
        found = await pipe.execute()
        health = found[0]
        counts = found[1] if usage else [None] * (2 * len(names))
        return [
            Load(
                _float(health[2 * i]),
                _int(health[2 * i + 1]),
                _int(counts[2 * i]),
                _int(counts[2 * i + 1]),
            )
            for i in range(len(names))
        ]

    async def cool(self, model: str, name: str, until: float, strikes: int) -> None:
        """Rest a deployment until `until` (epoch seconds), its streak now `strikes`."""
        key = health_key(model)
        pipe = self._redis.pipeline(transaction=False)
        pipe.hset(key, mapping={f"{name}:until": repr(until), f"{name}:strikes": strikes})
        pipe.expire(key, HEALTH_TTL)
        await pipe.execute()

    async def recovered(self, model: str, name: str) -> None:
        """Forget a deployment's failure streak (it answered)."""
        await self._redis.hdel(health_key(model), f"{name}:until", f"{name}:strikes")

    async def used(self, model: str, counts: Mapping[str, tuple[int, int]], now: float) -> None:
        """Add requests and tokens (by deployment name) to the current minute's use."""
        key = usage_key(model, minute_of(now))
        pipe = self._redis.pipeline(transaction=False)
        for name, (requests, tokens) in counts.items():
            pipe.hincrby(key, f"{name}:r", requests)
            pipe.hincrby(key, f"{name}:t", max(tokens, 0))
        pipe.expire(key, USAGE_TTL)
        await pipe.execute()
