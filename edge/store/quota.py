"""Quota counters: token and cost holds reserved before a call and settled after it, and
in-flight slots. The memory implementation mirrors the Redis scripts step for step."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from edge.store.usage import MemoryUsage, UsageRecord

PREFIX = "edge:q:"
SWEEP_EVERY = 4096


def counter_key(account: str, scope: str, field_name: str, bucket: str) -> str:
    """A counter of one limit's window; the {account} hash tag keeps one call's keys in one slot
    of a Redis Cluster."""
    return f"{PREFIX}{{{account}}}:{scope}:{field_name}:{bucket}"


def slots_key(account: str, scope: str) -> str:
    """The set of a scope's in-flight reservations."""
    return f"{PREFIX}{{{account}}}:{scope}:inflight"


def reservation_key(account: str, reservation_id: str) -> str:
    """The marker of an open reservation: present until settled or expired."""
    return f"{PREFIX}{{{account}}}:res:{reservation_id}"


@dataclass(frozen=True, slots=True)
class Hold:
    """An amount added to a counter, checked against a limit (None: count only)."""

    key: str
    amount: int
    limit: int | None
    expires_at: float  # the counter's window end


@dataclass(frozen=True, slots=True)
class Slot:
    """An in-flight set the reservation joins, with its size limit (None: track only)."""

    key: str
    limit: int | None


@dataclass(slots=True)
class ReserveResult:
    """The outcome: admitted, or the index of the hold or slot that refused (holds first)."""

    admitted: bool
    denied: int | None = None
    values: list[int] = field(default_factory=list)  # each counter before this call
    in_flight: list[int] = field(default_factory=list)  # each set before this call


class QuotaStore(Protocol):
    """Atomic reserve and settle."""

    async def reserve(
        self, marker: str, member: str, holds: list[Hold], slots: list[Slot], lease: float
    ) -> ReserveResult:
        """Check every limit, then add every hold and join every slot, all or nothing."""

    async def settle(
        self,
        marker: str,
        member: str,
        deltas: list[tuple[str, int]],
        slots: list[str],
        usage: UsageRecord | None = None,
    ) -> bool:
        """Apply deltas (real minus reserved) and leave the slots, once: False when the
        reservation was already settled or has expired. `usage` is added to the daily usage
        counters in the same step, whether or not the reservation was still open."""

    async def read(self, counters: list[str], slots: list[str]) -> tuple[list[int], list[int]]:
        """Current counter values and in-flight counts."""

    async def open_reservations(self, account: str) -> int:
        """How many reservations of an account are still open (for checks and operators)."""


class MemoryQuota:
    """Counters in dicts; every method runs without awaiting, so each is atomic."""

    def __init__(self, usage: MemoryUsage | None = None) -> None:
        self._usage = usage  # where settled usage is recorded (none: dropped)
        self._counters: dict[str, tuple[int, float]] = {}
        self._slots: dict[str, dict[str, float]] = {}
        self._markers: dict[str, float] = {}
        self._calls = 0

    def _sweep(self, now: float) -> None:
        """Drop expired entries now and then: nothing else would ever remove them."""
        self._counters = {k: v for k, v in self._counters.items() if v[1] > now}
        self._markers = {k: t for k, t in self._markers.items() if t > now}
        for key in list(self._slots):
            if not self._members(key, now):
                del self._slots[key]

    def _value(self, key: str, now: float) -> int:
        value, expires = self._counters.get(key, (0, 0.0))
        if expires <= now:
            self._counters.pop(key, None)
            return 0
        return value

    def _members(self, key: str, now: float) -> dict[str, float]:
        members = self._slots.setdefault(key, {})
        for name in [m for m, until in members.items() if until <= now]:
            del members[name]
        return members

    async def reserve(
        self, marker: str, member: str, holds: list[Hold], slots: list[Slot], lease: float
    ) -> ReserveResult:
        """Check every limit, then add every hold and join every slot, all or nothing."""
        now = time.time()
        self._calls += 1
        if self._calls % SWEEP_EVERY == 0:
            self._sweep(now)
        values = [self._value(h.key, now) for h in holds]
        for i, (hold, value) in enumerate(zip(holds, values, strict=True)):
            if hold.limit is not None and value + hold.amount > hold.limit:
                return ReserveResult(False, i, values)
        counts = [len(self._members(s.key, now)) for s in slots]
        for j, (slot, count) in enumerate(zip(slots, counts, strict=True)):
            if slot.limit is not None and count >= slot.limit:
                return ReserveResult(False, len(holds) + j, values, counts)
        for hold, value in zip(holds, values, strict=True):
            self._counters[hold.key] = (value + hold.amount, hold.expires_at)
        for slot in slots:
            self._slots[slot.key][member] = now + lease
        self._markers[marker] = now + lease
        return ReserveResult(True, None, values, counts)

    async def settle(
        self,
        marker: str,
        member: str,
        deltas: list[tuple[str, int]],
        slots: list[str],
        usage: UsageRecord | None = None,
    ) -> bool:
        """Apply deltas and leave the slots, once; record the usage."""
        now = time.time()
        if usage is not None and self._usage is not None:
            self._usage.add(usage)
        until = self._markers.pop(marker, None)
        if until is None or until <= now:
            return False
        for key, delta in deltas:
            value, expires = self._counters.get(key, (0, 0.0))
            if delta and expires > now:
                self._counters[key] = (max(0, value + delta), expires)
        for key in slots:
            self._slots.get(key, {}).pop(member, None)
        return True

    async def read(self, counters: list[str], slots: list[str]) -> tuple[list[int], list[int]]:
        """Current counter values and in-flight counts."""
        now = time.time()
        return (
            [self._value(k, now) for k in counters],
            [len(self._members(k, now)) for k in slots],
        )

    async def open_reservations(self, account: str) -> int:
        """Open reservations of an account."""
        now = time.time()
        prefix = reservation_key(account, "")
        return sum(1 for k, until in self._markers.items() if k.startswith(prefix) and until > now)
