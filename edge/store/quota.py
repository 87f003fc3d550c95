"""Quota state of one call: request-rate windows counted, token and cost holds reserved before
the call and settled after it, and in-flight slots. Every limit is checked and counted in one
atomic step (a Lua script on Redis, `quota_memory.MemoryQuota` in process)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from edge.store.usage import UsageRecord
from policies.quota import Period, Strategy
from policies.quota_estimate import PERIOD_SECONDS
from policies.rate_windows import WindowState

PREFIX = "edge:q:"
# How long a settled reservation's marker is kept, so that a retried settlement is a no-op:
# longer than the quota service goes on retrying one.
SETTLED_KEEP_SECONDS = 90


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


def window_key(account: str, scope: str, field_name: str) -> str:
    """Where a request-rate limit counts. Without the limit in it: a raised limit has room at
    once, a lowered one keeps its history."""
    return f"{PREFIX}{{{account}}}:{scope}:{field_name}"


@dataclass(frozen=True, slots=True)
class Hold:
    """An amount added to a counter, checked against a limit (None: count only)."""

    key: str
    amount: int
    limit: int | None
    expires_at: float  # the counter's window end

    def refuses(self, value: int) -> bool:
        """Whether the counter, at `value`, has no room for this hold."""
        return self.limit is not None and value + self.amount > self.limit


@dataclass(frozen=True, slots=True)
class Slot:
    """An in-flight set the reservation joins, with its size limit (None: track only)."""

    key: str
    limit: int | None

    def refuses(self, count: int) -> bool:
        """Whether the set, with `count` members, is full."""
        return self.limit is not None and count >= self.limit


@dataclass(frozen=True, slots=True)
class Window:
    """A request-rate limit: `limit` requests per `period`, counted with `strategy`."""

    key: str
    strategy: Strategy
    limit: int
    period: Period

    @property
    def seconds(self) -> int:
        """The window's length."""
        return PERIOD_SECONDS[self.period]


@dataclass(slots=True)
class ReserveResult:
    """The outcome, with what every limit held before the call (and each window after it)."""

    admitted: bool
    denied: int | None = None  # the first hold or slot that refused (holds first)
    values: list[int] = field(default_factory=list)  # each counter before this call
    in_flight: list[int] = field(default_factory=list)  # each set before this call
    windows: list[WindowState] = field(default_factory=list)


def first_denied(
    holds: list[Hold], slots: list[Slot], values: list[int], counts: list[int]
) -> int | None:
    """The index of the first hold or slot without room (holds first), if any."""
    for i, (hold, value) in enumerate(zip(holds, values, strict=True)):
        if hold.refuses(value):
            return i
    for j, (slot, count) in enumerate(zip(slots, counts, strict=True)):
        if slot.refuses(count):
            return len(holds) + j
    return None


class QuotaStore(Protocol):
    """Atomic reserve and settle."""

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
        counters in the same step, whether or not the reservation was still open, but never
        twice for one marker within `SETTLED_KEEP_SECONDS`: a settlement may be retried."""

    async def read(self, counters: list[str], slots: list[str]) -> tuple[list[int], list[int]]:
        """Current counter values and in-flight counts."""

    async def read_windows(self, windows: Sequence[Window]) -> list[WindowState]:
        """Each window's state now, without counting a request."""

    async def open_reservations(self, account: str) -> int:
        """How many reservations of an account are still open (for checks and operators)."""

    async def claim(self, key: str, ttl: float) -> bool:
        """True for the first claim of `key` until it expires (every replica asks the same
        store, so one of them wins): what happens at most once per period."""
