"""Batched script calls: one goes at once, those due meanwhile follow together, and a caller
that has gone away is not run for."""

from __future__ import annotations

import asyncio
from typing import Any

from edge.store.scripts import Batched


class FakeScript:
    """Records each run; the first waits until released."""

    def __init__(self) -> None:
        self.ran: list[str] = []
        self.release = asyncio.Event()

    async def __call__(self, keys: list[str], args: list[str | int]) -> Any:
        self.ran.append(keys[0])
        if len(self.ran) == 1:
            await self.release.wait()
        return keys[0]


async def test_a_cancelled_caller_is_not_run_for() -> None:
    script = FakeScript()
    batched = Batched(script, None)  # lone calls need no pipeline, so no client
    first = asyncio.ensure_future(batched(["a"], []))
    await asyncio.sleep(0)
    gone = asyncio.ensure_future(batched(["b"], []))
    kept = asyncio.ensure_future(batched(["c"], []))
    await asyncio.sleep(0)
    gone.cancel()
    script.release.set()
    assert await first == "a" and await kept == "c"
    assert script.ran == ["a", "c"]
