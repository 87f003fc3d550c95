"""The breaker in front of the shared store: a lost connection trips it at once, timeouts only
a few in a row, and an error the store answered with leaves it closed."""

from __future__ import annotations

from edge.quota.breaker import Breaker
from edge.store import StoreDisconnected, StoreTimeout, StoreUnavailable


def test_a_lost_connection_trips_it_at_once() -> None:
    breaker = Breaker(cooldown=60)
    breaker.failed(StoreDisconnected("Connection refused"))
    assert not breaker.allows()
    breaker.reset()
    assert breaker.allows()


def test_timeouts_trip_it_only_a_few_in_a_row() -> None:
    breaker = Breaker(cooldown=60, timeouts_to_trip=3)
    for _ in range(2):
        breaker.failed(StoreTimeout("no answer"))
        assert breaker.allows()
    breaker.reset()  # an answer in between starts the count again
    for _ in range(2):
        breaker.failed(StoreTimeout("no answer"))
    assert breaker.allows()
    breaker.failed(StoreTimeout("no answer"))
    assert not breaker.allows()


def test_an_error_the_store_answered_with_leaves_it_closed() -> None:
    breaker = Breaker(cooldown=60)
    breaker.failed(StoreUnavailable("OOM command not allowed"))
    assert breaker.allows()
