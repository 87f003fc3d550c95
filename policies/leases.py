"""Request-rate leases: when a replica may hold a slice of a hot window, how large, and for how
long. A slice is counted in the shared window when it is taken, so the slices held by every
replica and the requests counted one by one never sum past the limit; what a slice leaves unspent
is given back when it ends.

The numbers bound what leases cost a tenant. A replica takes at most 1/`SHARE` of what is left
in the window, and at most 1/`CAP_FRACTION` of the limit; near the limit slices shrink to nothing
and each request is decided by the shared store again. What other replicas hold unspent can make a
tenant's request wait for at most one lease's length; a replica that dies holding a slice keeps
that slice counted until the window forgets it (its lease's end plus the window's length)."""

from __future__ import annotations

from dataclasses import dataclass

LEASE_SECONDS = 1.0  # how long a slice may be spent, for windows of 10 s or more
MIN_LIMIT = 1000  # smaller limits are decided request by request: a slice would be a few
CAP_FRACTION = 50  # a slice is at most 2% of the limit
SHARE = 4  # ... and at most a quarter of what the window has left
# Calls within one lease's length before a window is worth a lease: a take and its end are two
# store calls, at most a quarter more than the calls that made the window hot.
HOT_CALLS = 8


@dataclass(frozen=True, slots=True)
class LeasePolicy:
    """The lease parameters of one gateway (the defaults above unless configured)."""

    seconds: float = LEASE_SECONDS
    min_limit: int = MIN_LIMIT
    cap_fraction: int = CAP_FRACTION
    share: int = SHARE
    hot_calls: int = HOT_CALLS

    def leasable(self, limit: int) -> bool:
        """Whether a window of this limit is worth leasing."""
        return limit >= self.min_limit

    def length(self, period_seconds: float) -> float:
        """How long a slice of a window of this length may be spent: a tenth of a short window,
        so that a slice never holds a large part of it."""
        return min(self.seconds, period_seconds / 10)

    def size(self, limit: int, recent_calls: int) -> int:
        """How many requests to ask for: twice what this replica spent over the last lease's
        length, within the cap (the store grants less when the window has less to share)."""
        cap = max(1, limit // self.cap_fraction)
        return max(self.hot_calls, min(cap, 2 * recent_calls))
