"""How many large request bodies one process reads and parses at once.

A body is held whole while it is read, copied once when joined, and parsed into Python objects
(`edge.request_limits` bounds those per body): a few of them at once cost hundreds of
megabytes. A body over 1 MiB, of unknown size or compressed is read only in one of a few slots,
at most `per_account` of them for one account, so one tenant's large bodies never hold them all;
a body that waits longer than the body deadline for one is refused with 503 `overloaded` and
`Retry-After` (its bytes unread). Smaller bodies take no slot.

The slots live in the application's state under `PARSE_SLOTS` (`install` puts them there while
the application is built); an application without them reads every body at once, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiohttp import web

from edge.errors import GatewayError

LARGE_BODY = 1 << 20  # smaller bodies are read without a slot
TOTAL_SLOTS = 8
ACCOUNT_SLOTS = 2


def too_busy() -> GatewayError:
    """The 503 for a large body that found no slot in time (a new error each time)."""
    return GatewayError(
        503,
        "The gateway is reading as many large request bodies as it takes at once. Retry the "
        "request shortly.",
        code="overloaded",
        headers={"Retry-After": "1"},
    )


@dataclass(slots=True)
class _Account:
    slots: asyncio.Semaphore
    users: int = 0  # requests holding or waiting for one of its slots


@dataclass(slots=True)
class ParseSlots:
    """The slots of one process: `total` in all, `per_account` for one account."""

    total: int = TOTAL_SLOTS
    per_account: int = ACCOUNT_SLOTS
    wait: float | None = None  # seconds a body waits for a slot; None: the body deadline
    held: int = field(init=False, default=0)  # slots held now, in all
    _free: asyncio.Semaphore = field(init=False)
    _accounts: dict[str, _Account] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._free = asyncio.Semaphore(self.total)

    @property
    def accounts(self) -> int:
        """Accounts holding or waiting for a slot now."""
        return len(self._accounts)

    @contextlib.asynccontextmanager
    async def slot(self, account: str, deadline: float) -> AsyncIterator[None]:
        """Hold a slot for `account` while the body is read and parsed; 503 after `wait` (else
        `deadline`) seconds without one. The account's own slot is taken first, so its extra
        bodies wait without holding any of the shared ones."""
        wait = self.wait if self.wait is not None else deadline
        mine = self._accounts.get(account)
        if mine is None:
            mine = self._accounts[account] = _Account(asyncio.Semaphore(self.per_account))
        mine.users += 1
        try:
            try:
                async with asyncio.timeout(wait):
                    await mine.slots.acquire()
                    try:
                        await self._free.acquire()
                    except BaseException:
                        mine.slots.release()
                        raise
            except TimeoutError:
                raise too_busy() from None
            self.held += 1
            try:
                yield
            finally:
                self.held -= 1
                self._free.release()
                mine.slots.release()
        finally:
            mine.users -= 1
            if not mine.users:
                del self._accounts[account]


PARSE_SLOTS: web.AppKey[ParseSlots] = web.AppKey("parse_slots", ParseSlots)


def install(app: web.Application, slots: ParseSlots | None = None) -> None:
    """Give an application (not yet started) its parse slots."""
    app[PARSE_SLOTS] = slots or ParseSlots()


def needs_slot(request: web.Request) -> bool:
    """Whether the request has a body that is large, of unknown size, or compressed."""
    if not request.body_exists:
        return False
    size = request.content_length
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    return size is None or size > LARGE_BODY or encoding not in ("", "identity")
