"""The store writes that outlive their request: settlements and releases run as tasks of their
own, held here until they end, so that shutdown can wait for them and a long outage cannot pile
up an unbounded number of them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)
MAX_PENDING = 10_000
RETRY_CONCURRENCY = 8


class Backlog:
    """Background store writes, and the slots that let their retries through a few at a time."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        # A backlog let loose in one pipeline would keep Redis busy past the timeout of the
        # admissions waiting behind it, and trip the breaker again.
        self.retry_slots = asyncio.Semaphore(RETRY_CONCURRENCY)

    def run(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run a write in a task of its own, held until it ends."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def full(self) -> bool:
        """Whether more writes wait than a long outage may hold in memory."""
        return len(self._tasks) > MAX_PENDING

    async def wait(self, limit: float) -> None:
        """Wait (at most `limit` seconds) for the writes still running."""
        pending = set(self._tasks)
        if not pending:
            return
        _, late = await asyncio.wait(pending, timeout=limit)
        if late:
            log.warning("%d settlements unfinished at shutdown; they expire", len(late))
