"""A short circuit breaker in front of the shared store, so an outage costs no request a
timeout."""

from __future__ import annotations

import time
from dataclasses import dataclass

from edge.store import StoreDisconnected, StoreTimeout, StoreUnavailable


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
