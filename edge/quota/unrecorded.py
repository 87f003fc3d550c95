"""Leased calls whose reservation is not written yet: a call admitted from a lease, with no limit
left for the store to check, is recorded in the store (its marker and in-flight entries) only
once it has run for `RECORD_AFTER` seconds. A call that ends sooner is settled without ever
being recorded: its settlement writes the usage and the settled marker (which keeps a late
record from counting), and the store is spared a round trip per short call.

What waits here holds no limit (no counter, no in-flight set with a limit), so nothing is
decided on its absence; the admin API's in-flight figure counts a call from its first
`RECORD_AFTER` seconds on, and a replica that crashes leaves nothing of these calls behind."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from edge.quota.backlog import Backlog
from edge.quota.demand import Demand
from edge.quota.reservation import Reservation

RECORD_AFTER = 1.0  # seconds a leased call runs before its reservation is written
# The recorder wakes at most this often, however many calls come due: one wake-up per call
# would cost a busy replica a timer and a loop pass each.
TICK = 0.1

Write = Callable[[Demand, Reservation], Coroutine[Any, Any, None]]


class Unrecorded:
    """The leased calls not yet recorded, and the task that records those still running."""

    def __init__(self, write: Write, backlog: Backlog, after: float = RECORD_AFTER) -> None:
        self._write = write
        self._backlog = backlog
        self._after = after
        self._calls: dict[str, tuple[Demand, Reservation]] = {}
        self._due: deque[tuple[float, str]] = deque()  # (when, reservation id), in order
        self._recorder: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._calls)

    def add(self, demand: Demand, reservation: Reservation) -> None:
        """Record this call's reservation if it is still running `after` seconds from now."""
        self._calls[reservation.id] = (demand, reservation)
        self._due.append((time.monotonic() + self._after, reservation.id))
        if self._recorder is None:
            self._recorder = asyncio.get_running_loop().create_task(self._record_due())

    def ended(self, reservation: Reservation) -> None:
        """The call is settling: it is not to be recorded any more."""
        self._calls.pop(reservation.id, None)

    async def _record_due(self) -> None:
        try:
            while self._due:
                when, _ = self._due[0]
                await asyncio.sleep(max(TICK, when - time.monotonic()))
                self._record(time.monotonic())
        finally:
            self._recorder = None

    def _record(self, now: float) -> None:
        """Write the reservations of the calls due by `now` that are still running."""
        due = self._due
        while due and due[0][0] <= now:
            found = self._calls.pop(due.popleft()[1], None)
            if found is not None:
                self._backlog.run(self._write(*found))

    def close(self) -> None:
        """Record every call still running now (at shutdown), and stop."""
        if self._recorder is not None:
            self._recorder.cancel()
        self._record(float("inf"))
