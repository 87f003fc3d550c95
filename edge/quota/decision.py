"""From a reservation's outcome to a decision: the admitted call's limit states (its RateLimit
headers), or the 429 of the refusing limit that frees up last."""

from __future__ import annotations

from edge.errors import GatewayError
from edge.quota.demand import Demand
from edge.quota.denials import limit_exceeded
from edge.quota.reservation import Reservation
from edge.store.quota import ReserveResult
from policies.ratelimit import LimitState, ratelimit_headers


class Admission:
    """An admitted request: the limit states to report, and its reservation."""

    __slots__ = ("reservation", "states")

    def __init__(self, states: list[LimitState], reservation: Reservation) -> None:
        self.states = states
        self.reservation = reservation

    @property
    def headers(self) -> dict[str, str]:
        """RateLimit headers: every limit's state is known once the call is admitted."""
        return ratelimit_headers(self.states)


def admitted_states(demand: Demand, outcome: ReserveResult, now: float) -> list[LimitState]:
    """Every limit's state once the call is counted."""
    states = [
        c.state(used + c.hold.amount, now)
        for c, used in zip(demand.counters, outcome.values, strict=True)
    ]
    states += [
        c.state(w.remaining, w.reset) for c, w in zip(demand.rates, outcome.windows, strict=True)
    ]
    return states


def refusal(demand: Demand, outcome: ReserveResult, now: float) -> GatewayError:
    """The 429 of a refused call. The call fits again only when every refusing limit does: the
    one that frees up last is reported, with its exact Retry-After."""
    refusals: list[tuple[LimitState, int | None]] = []
    for counter, value in zip(demand.counters, outcome.values, strict=True):
        if counter.hold.refuses(value):
            refusals.append((counter.state(value, now), counter.hold.amount))
    for slot, count in zip(demand.slots, outcome.in_flight, strict=True):
        if slot.slot.refuses(count):
            refusals.append((slot.state(slot.slot.limit or 0), None))
    for check, window in zip(demand.rates, outcome.windows, strict=True):
        if not window.allowed:
            refusals.append((check.state(0, window.reset), None))
    state, needed = max(refusals, key=lambda r: r[0].reset)
    return limit_exceeded(state, needed)
