"""The in-process moving windows: counted as the reserve script counts them, and forgotten once
idle, so a process that saw many callers does not keep them all."""

from __future__ import annotations

import pytest

from edge.store.quota import Window
from edge.store.rates_memory import SWEEP_EVERY, MovingWindows


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1_000_000.0]
    monkeypatch.setattr("edge.store.rates_memory.time.time", lambda: now[0])
    return now


def test_a_request_leaves_the_window_a_period_after_it_came(clock: list[float]) -> None:
    windows, window = MovingWindows(), Window("w:{a}:rps", "moving-window", 2, "second")
    for _ in range(2):
        assert windows.allows(window)
        windows.hit(window)
        clock[0] += 0.25
    assert not windows.allows(window)
    refused = windows.state(window, allowed=False)
    assert refused.reset == pytest.approx(0.5)  # the oldest of the two came 0.5 s ago
    clock[0] += 0.5
    assert windows.allows(window)
    assert windows.state(window, None).remaining == 1


def test_idle_windows_are_forgotten(clock: list[float]) -> None:
    windows = MovingWindows()
    idle = Window("w:{a}:rps", "moving-window", 5, "second")
    busy = Window("w:{b}:rpm", "moving-window", 10**6, "minute")
    windows.hit(idle)
    clock[0] += 2
    for _ in range(SWEEP_EVERY):
        windows.hit(busy)
    assert list(windows._times) == [f"{busy.key}/60"]
