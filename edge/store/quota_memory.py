"""The in-process quota store: the `memory://` store's, and each replica's fallback while Redis is
unreachable. It mirrors the Redis scripts step for step."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from edge.store.quota import (
    SETTLED_KEEP_SECONDS,
    Hold,
    ReserveResult,
    Slot,
    Window,
    first_denied,
    reservation_key,
)
from edge.store.rates_memory import LocalWindows
from edge.store.usage import MemoryUsage, UsageRecord
from policies.rate_windows import WindowState

SWEEP_EVERY = 4096


class MemoryQuota:
    """Counters and in-flight sets in dicts, request-rate windows in `rates_memory.LocalWindows`."""

    def __init__(self, usage: MemoryUsage | None = None) -> None:
        self._usage = usage  # where settled usage is recorded (none: dropped)
        self._windows = LocalWindows()
        # A reservation awaits `limits` between its checks and its counts; no other one may
        # run in between. Everything else here runs without awaiting, so it is atomic as is.
        self._lock = asyncio.Lock()
        self._counters: dict[str, tuple[int, float]] = {}
        self._slots: dict[str, dict[str, float]] = {}
        self._markers: dict[str, float] = {}
        self._settled: dict[str, float] = {}  # settled markers, kept so a retry is a no-op
        self._claims: dict[str, float] = {}  # claim key -> when it expires
        self._calls = 0

    def _sweep(self, now: float) -> None:
        """Drop expired entries now and then: nothing else would ever remove them."""
        self._counters = {k: v for k, v in self._counters.items() if v[1] > now}
        self._markers = {k: t for k, t in self._markers.items() if t > now}
        self._settled = {k: t for k, t in self._settled.items() if t > now}
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
        self,
        marker: str,
        member: str,
        holds: list[Hold],
        slots: list[Slot],
        lease: float,
        windows: Sequence[Window] = (),
    ) -> ReserveResult:
        """Check every limit, then count the request in every window, add every hold and join
        every slot, all or nothing."""
        async with self._lock:
            states: list[WindowState] = []
            for window in windows:
                states.append(await self._windows.state(window, await self._windows.allows(window)))
            now = time.time()
            self._calls += 1
            if self._calls % SWEEP_EVERY == 0:
                self._sweep(now)
            values = [self._value(h.key, now) for h in holds]
            counts = [len(self._members(s.key, now)) for s in slots]
            denied = first_denied(holds, slots, values, counts)
            released = self._settled.get(marker, 0.0) > now  # released before it arrived
            if denied is not None or released or not all(s.allowed for s in states):
                return ReserveResult(False, denied, values, counts, states)
            for hold, value in zip(holds, values, strict=True):
                self._counters[hold.key] = (value + hold.amount, hold.expires_at)
            for slot in slots:
                self._slots[slot.key][member] = now + lease
            self._markers[marker] = now + lease
            for window in windows:
                await self._windows.hit(window)
            return ReserveResult(True, None, values, counts, states)

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
        if self._settled.get(marker, 0.0) > now:
            return False
        self._settled[marker] = now + SETTLED_KEEP_SECONDS
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

    async def read_windows(self, windows: Sequence[Window]) -> list[WindowState]:
        """Each window's state now, without counting a request."""
        return [await self._windows.state(w, None) for w in windows]

    async def open_reservations(self, account: str) -> int:
        """Open reservations of an account."""
        now = time.time()
        prefix = reservation_key(account, "")
        return sum(1 for k, until in self._markers.items() if k.startswith(prefix) and until > now)

    async def claim(self, key: str, ttl: float) -> bool:
        """True for the first claim of `key` until it expires."""
        now = time.time()
        if len(self._claims) > 10_000:
            self._claims = {k: t for k, t in self._claims.items() if t > now}
        if self._claims.get(key, 0.0) > now:
            return False
        self._claims[key] = now + ttl
        return True
