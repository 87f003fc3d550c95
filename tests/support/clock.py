"""The clock in `make test`: read to stop waiting, to print a figure, or to order events.

`make test` asserts nothing about how fast anything is: on a shared, busy machine a measured
duration is a coin toss. Speed is measured by `make bench` and `make soak`, which print their
figures (the soak runs also hold them to their bounds: tests/soak/test_durations_soak.py has
the ones `make test` used to assert). In `make test` the clock is read through this module,
for one of three things, each named so a reader knows which:

- `Deadline` / `wait_until`: how long a wait gives up after (or how long a load runs). It bounds
  the test's own run time (a hang becomes a failure naming what never happened); it is not an
  assertion on speed, and is set far above what the awaited thing takes on a quiet machine.
- `Stopwatch`: a figure the test prints (`pytest -rP` shows it); never compared with a bound.
- `stamp`: when something happened, to put events in order or to print; never a duration
  compared with a bound.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable


def stamp() -> float:
    """When something happened (monotonic seconds): to order events or to print a figure."""
    return time.monotonic()  # an instant for ordering or printing, not an assertion on speed


class Deadline:
    """How long a wait gives up after, or a load runs: bounds the test's own run time, not an
    assertion on speed. Passing it in a wait means the awaited thing never happened; `check`
    says which."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._ends = time.monotonic() + seconds  # bounds the test's own run time

    def passed(self) -> bool:
        """Whether the wait should give up now."""
        return time.monotonic() >= self._ends  # bounds the test's own run time

    def left(self) -> float:
        """Seconds until it passes (at least 0): a timeout argument for one last wait."""
        return max(0.0, self._ends - time.monotonic())  # bounds the test's own run time

    def check(self, what: object) -> None:
        """Fail, naming what never happened, once the deadline has passed."""
        if self.passed():
            raise AssertionError(f"gave up waiting after {self.seconds:g} s: {what}")


async def wait_until(
    check: Callable[[], bool | Awaitable[bool]],
    what: str,
    seconds: float = 10.0,
    poll: float = 0.02,
) -> None:
    """Poll `check` until it holds; fail naming `what` after `seconds` (a bound on the test's
    own run time, not an assertion on speed)."""
    deadline = Deadline(seconds)
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        deadline.check(what)
        await asyncio.sleep(poll)


class Stopwatch:
    """A printed figure only, never compared with a bound: seconds since it was started."""

    def __init__(self) -> None:
        self.started = time.monotonic()  # a printed figure only

    def elapsed(self) -> float:
        """Seconds since the start, to print."""
        return time.monotonic() - self.started  # a printed figure only
