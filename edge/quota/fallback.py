"""What quotas do while the shared store is unreachable: a count of every fallback decision
(read by metrics), and a short circuit breaker so an outage costs no request a timeout."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from edge.store import StoreDisconnected, StoreTimeout, StoreUnavailable

FallbackKind = Literal[
    "rate_local",  # a request-rate limit decided by this process's share of the limit
    "concurrency_local",  # a concurrency limit decided by this process's share
    "budget_closed",  # a token or cost limit could not be checked: refused with 503
    "budget_open",  # a token or cost limit could not be checked: admitted (fail-open policy)
    "settle_late",  # real usage recorded after the store came back (a retried settlement)
    "settle_lost",  # real usage could not be recorded; the reservation expires on its own
]
FALLBACK_KINDS: tuple[FallbackKind, ...] = (
    "rate_local",
    "concurrency_local",
    "budget_closed",
    "budget_open",
    "settle_late",
    "settle_lost",
)


@dataclass(slots=True)
class FallbackCounter:
    """Counts of fallback decisions by kind, for the metrics exporter to read."""

    counts: Counter[str] = field(default_factory=Counter)

    def record(self, kind: FallbackKind) -> None:
        """Count one decision."""
        self.counts[kind] += 1

    def snapshot(self) -> dict[str, int]:
        """Every kind's count (zeros included), as a plain dict."""
        return {kind: self.counts[kind] for kind in FALLBACK_KINDS}

    @property
    def total(self) -> int:
        """All fallback decisions."""
        return sum(self.counts.values())


@dataclass(slots=True)
class Breaker:
    """After a connection failure, skip the store for `cooldown` seconds, then let calls probe
    it again: a dead Redis costs requests nothing, a restarted one is used again at once.

    A timeout alone may only mean this process was busy, so it takes `timeouts_to_trip` in a
    row (no answer in between) to trip."""

    cooldown: float = 0.25
    timeouts_to_trip: int = 3
    open_until: float = 0.0
    timeouts: int = 0

    def allows(self) -> bool:
        """Whether to try the store now."""
        return time.monotonic() >= self.open_until

    def trip(self) -> None:
        """The store refused or dropped the connection."""
        self.open_until = time.monotonic() + self.cooldown

    def timed_out(self) -> None:
        """The store did not answer in time."""
        self.timeouts += 1
        if self.timeouts >= self.timeouts_to_trip:
            self.timeouts = 0
            self.trip()

    def failed(self, exc: StoreUnavailable) -> None:
        """Trip now for a broken connection, after a few in a row for timeouts; any other
        failure (the store answered, with an error) leaves it as it is."""
        if isinstance(exc, StoreTimeout):
            self.timed_out()
        elif isinstance(exc, StoreDisconnected):
            self.trip()

    def reset(self) -> None:
        """The store answered."""
        self.open_until = 0.0
        self.timeouts = 0
