"""This replica's leases of hot request-rate windows: a call whose every window has a live slice
spends one request of each here, with no store round trip; slices are taken in the background
before they run out and given back when they end (at their end, at the latest one lease's length
after the last call, and at shutdown). See `policies/leases.py` for what a slice may hold."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from edge.quota.backlog import Backlog
from edge.quota.demand import RateCheck
from edge.store import StoreUnavailable
from edge.store.quota import Window
from edge.store.quota_leases import Grant, RedisLeases
from policies.leases import LeasePolicy
from policies.rate_windows import WindowState, moving_read, sliding_read

log = logging.getLogger(__name__)
MAX_WINDOWS = 10_000  # windows tracked at once; past it, calls are decided by the store


@dataclass(slots=True)
class Lease:
    """One slice: how many it holds, until when, and when each spent request was made."""

    id: str
    window: Window
    grant: Grant
    taken_at: float
    ends: float
    spent: list[int] = field(default_factory=list)  # ms per spent slot; 0: given back

    def live(self, now: float) -> bool:
        """Whether one more request may be spent from it now."""
        return now < self.ends and len(self.spent) < self.grant.granted

    def low(self) -> bool:
        """Whether half of it is spent: time to take the next."""
        return 2 * len(self.spent) >= self.grant.granted

    def state(self, now: float) -> WindowState:
        """The window as this replica sees it: as it was when the slice was taken, plus what
        this replica spent of it since (other replicas' requests are not seen until the next)."""
        window, grant = self.window, self.grant
        spent = len(self.spent)
        if window.strategy == "sliding-window-counter":
            left = max(0.0, grant.left - (now - self.taken_at))
            return sliding_read(window.limit, window.seconds, grant.x, grant.y + spent, left)
        oldest = now - self.taken_at + (grant.y / 1000 if grant.x else 0.0)
        return moving_read(window.limit, window.seconds, grant.x + spent, oldest)


@dataclass(slots=True)
class _Window:
    """A window this replica has leased or may lease."""

    leases: list[Lease] = field(default_factory=list)  # oldest first
    taking: bool = False
    calls: int = 0  # calls since `since`
    since: float = 0.0
    last_calls: int = 0  # calls over the previous lease length
    pause_until: float = 0.0  # after a take that got nothing (or failed)

    def live(self, now: float) -> Lease | None:
        for lease in self.leases:
            if lease.live(now):
                return lease
        return None


Spent = list[tuple[Lease, int]]  # (lease, index of the slot spent)


class Leases:
    """The slices this replica holds, and their taking and ending."""

    def __init__(self, store: RedisLeases, backlog: Backlog, policy: LeasePolicy) -> None:
        self._store = store
        self._backlog = backlog
        self._policy = policy
        self._windows: dict[Window, _Window] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._closed = False

    def spend(self, rates: Sequence[RateCheck], now: float) -> tuple[list[WindowState], Spent]:
        """Spend one request of each window's live slice, all or none: (the windows' states,
        what was spent); empty when some window has no live slice (the store decides)."""
        if not rates or self._closed:
            return [], []
        policy = self._policy
        if not all(policy.leasable(check.window.limit) for check in rates):
            return [], []
        found: list[tuple[Window, _Window, Lease | None]] = []
        for check in rates:
            window = check.window
            tracked = self._track(window, now)
            if tracked is None:
                return [], []
            found.append((window, tracked, tracked.live(now)))
        if any(lease is None for _, _, lease in found):
            for window, tracked, _ in found:
                self._maybe_take(window, tracked, now)
            return [], []
        at = int(now * 1000)
        states, spent = [], []
        for window, tracked, lease in found:
            assert lease is not None  # checked above, all or none
            lease.spent.append(at)
            spent.append((lease, len(lease.spent) - 1))
            states.append(lease.state(now))
            if lease.low():
                self._maybe_take(window, tracked, now)
            if len(lease.spent) == lease.grant.granted:
                self._end_soon(window, tracked, lease)
        return states, spent

    def unspend(self, spent: Spent) -> None:
        """Give back what a call spent and did not use (another limit refused it). A slice that
        has ended meanwhile keeps it counted: more than was used, never less."""
        for lease, index in spent:
            lease.spent[index] = 0

    def _track(self, window: Window, now: float) -> _Window | None:
        tracked = self._windows.get(window)
        if tracked is None:
            if len(self._windows) >= MAX_WINDOWS:
                return None
            tracked = self._windows[window] = _Window(since=now)
        if now - tracked.since >= self._policy.length(window.seconds):
            tracked.last_calls, tracked.calls, tracked.since = tracked.calls, 0, now
        tracked.calls += 1
        return tracked

    def _maybe_take(self, window: Window, tracked: _Window, now: float) -> None:
        """Take the next slice in the background, if the window is hot and none is on its way."""
        if tracked.taking or now < tracked.pause_until or len(tracked.leases) > 1:
            return
        if max(tracked.calls, tracked.last_calls) < self._policy.hot_calls:
            return
        tracked.taking = True
        want = self._policy.size(window.limit, max(tracked.calls, tracked.last_calls))
        self._backlog.run(self._take(window, tracked, want))
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def _take(self, window: Window, tracked: _Window, want: int) -> None:
        now = time.time()
        length = self._policy.length(window.seconds)
        ends = now + length
        lease_id = f"L{secrets.token_hex(8)}"
        try:
            grant = await self._store.take(window, want, self._policy.share, now, ends, lease_id)
        except StoreUnavailable as exc:
            log.info("request-rate lease not taken (%s): the store decides each call", exc)
            tracked.pause_until = now + length
            return
        finally:
            tracked.taking = False
        if window.strategy == "sliding-window-counter":
            ends = min(ends, now + grant.left)  # a slice counts in one fixed window only
        if grant.granted <= 0 or self._closed:
            tracked.pause_until = now + length
            if grant.granted > 0:
                self._backlog.run(self._end(Lease(lease_id, window, grant, now, ends)))
            return
        tracked.leases.append(Lease(lease_id, window, grant, now, ends))

    def _end_soon(self, window: Window, tracked: _Window, lease: Lease) -> None:
        tracked.leases.remove(lease)
        self._backlog.run(self._end(lease))

    async def _end(self, lease: Lease) -> None:
        sliding = lease.window.strategy == "sliding-window-counter"
        if sliding and all(lease.spent) and len(lease.spent) == lease.grant.granted:
            return  # all spent, where it was counted: nothing to give back or move
        try:
            await self._store.end(lease.window, lease.grant, lease.id, lease.spent)
        except StoreUnavailable as exc:
            # What it did not spend stays counted until the window forgets it: never too little.
            log.info("request-rate lease not given back (%s)", exc)

    def sweep(self, now: float) -> None:
        """End the slices past their end, and forget windows idle for a lease's length."""
        for window, tracked in list(self._windows.items()):
            for lease in [lease for lease in tracked.leases if lease.ends <= now]:
                self._end_soon(window, tracked, lease)
            idle = now - tracked.since >= 2 * self._policy.length(window.seconds)
            if not tracked.leases and not tracked.taking and idle:
                del self._windows[window]

    async def _sweep(self) -> None:
        try:
            while self._windows:
                # A tenth of a lease: a slice that has ended is given back soon after.
                await asyncio.sleep(self._policy.seconds / 10)
                self.sweep(time.time())
        finally:
            self._sweeper = None

    async def close(self) -> None:
        """Give back every slice (at shutdown); no new ones are taken."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        for window, tracked in list(self._windows.items()):
            for lease in list(tracked.leases):
                self._end_soon(window, tracked, lease)
        self._windows.clear()
