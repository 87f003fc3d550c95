"""Stored responses and their event logs: the record, the interface, the `memory://` version.

A response's state changes and event appends go through one conditional operation, `append`,
so that whoever moves a response to a terminal status (the worker that ran it, a cancel from
any replica, a takeover after a crash) does so exactly once, and nothing is logged after it.
"""

from __future__ import annotations

import asyncio
import copy
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

TERMINAL = frozenset({"completed", "failed", "cancelled", "incomplete"})

# Why an `append` was refused.
REFUSED = -1  # terminal already, or not in the expected status
MISSING = -2  # no such response (expired or deleted)
FENCED = -3  # another attempt owns the run now


@dataclass(slots=True)
class StoredResponse:
    """One response as kept for an account: its object, its input items, its run state."""

    id: str
    account: str
    response: dict[str, Any]
    input_items: list[dict[str, Any]] = field(default_factory=list)
    status: str = "completed"
    stored: bool = True  # False: only a marker that the id exists with store=false
    previous_response_id: str | None = None
    background: bool = False
    job: dict[str, Any] | None = None  # what a worker needs to run a background response
    attempt: str | None = None  # the run attempt that owns a background response
    recorded: dict[str, Any] = field(default_factory=dict)  # `tags`, `trace`: kept, not sent
    created_at: float = field(default_factory=time.time)
    # The branch the request that created it was on: only credentials whose lineage covers it
    # read, chain, cancel or delete it. None: account-wide (created without a branch, or stored
    # before responses recorded one), reached by unbound credentials only.
    branch: str | None = None

    @property
    def terminal(self) -> bool:
        """Whether the response reached its final status."""
        return self.status in TERMINAL

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StoredResponse:
        """Parse a stored record."""
        return cls(**data)


@dataclass(frozen=True, slots=True)
class Change:
    """A conditional state change applied with an append."""

    expect: str | None = None  # refuse unless the status is this
    attempt: str | None = None  # refuse unless this attempt owns the run
    status: str | None = None  # the new status
    claim: str | None = None  # the attempt that owns the run from now on
    response: dict[str, Any] | None = None  # the new response object


class ResponseStore(Protocol):
    """Stored responses, scoped by account, with an append-only event log each."""

    async def create(
        self, record: StoredResponse, ttl: float, events: list[bytes] | None = None
    ) -> None:
        """Insert or replace a record (and start its event log with `events`)."""

    async def get(self, account: str, response_id: str) -> StoredResponse | None:
        """One record, or None when unknown, expired or another account's."""

    async def delete(self, account: str, response_id: str) -> bool:
        """Remove a record and its log; False when there was none."""

    async def append(
        self, account: str, response_id: str, events: list[bytes], change: Change, ttl: float
    ) -> int:
        """Log events (numbered from the log's length) and apply the change, all or nothing.

        Returns the log's new length, or REFUSED, MISSING or FENCED.
        """

    async def events(
        self, account: str, response_id: str, after: int, wait: float
    ) -> list[tuple[int, bytes]]:
        """Events numbered above `after`, waiting up to `wait` seconds for the first one."""


@dataclass(slots=True)
class _Entry:
    record: StoredResponse
    expires: float
    log: list[bytes] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class MemoryResponses:
    """Responses in a dict; every operation runs without awaiting, so each is atomic."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._next_sweep = 0.0

    def _live(self, account: str, response_id: str) -> _Entry | None:
        key = (account, response_id)
        entry = self._entries.get(key)
        if entry is not None and entry.expires <= time.time():
            del self._entries[key]
            return None
        return entry

    def _sweep(self) -> None:
        now = time.time()
        if now < self._next_sweep:
            return
        self._next_sweep = now + 60.0
        for key in [k for k, e in self._entries.items() if e.expires <= now]:
            del self._entries[key]

    async def create(
        self, record: StoredResponse, ttl: float, events: list[bytes] | None = None
    ) -> None:
        """Insert or replace a record."""
        self._sweep()
        key = (record.account, record.id)
        old = self._entries.get(key)
        entry = _Entry(copy.deepcopy(record), time.time() + ttl, list(events or []))
        self._entries[key] = entry
        if old is not None:
            old.changed.set()

    async def get(self, account: str, response_id: str) -> StoredResponse | None:
        """One record."""
        entry = self._live(account, response_id)
        return copy.deepcopy(entry.record) if entry else None

    async def delete(self, account: str, response_id: str) -> bool:
        """Remove a record and its log."""
        entry = self._live(account, response_id)
        if entry is None:
            return False
        del self._entries[(account, response_id)]
        entry.changed.set()  # a waiting reader notices the deletion at once
        return True

    async def append(
        self, account: str, response_id: str, events: list[bytes], change: Change, ttl: float
    ) -> int:
        """Log events and apply the change, or refuse."""
        entry = self._live(account, response_id)
        if entry is None:
            return MISSING
        record = entry.record
        if record.terminal or (change.expect is not None and record.status != change.expect):
            return REFUSED
        if change.attempt is not None and record.attempt != change.attempt:
            return FENCED
        entry.log.extend(events)
        if change.status is not None:
            record.status = change.status
        if change.claim is not None:
            record.attempt = change.claim
        if change.response is not None:
            record.response = copy.deepcopy(change.response)
        entry.expires = time.time() + ttl
        entry.changed.set()
        entry.changed = asyncio.Event()
        return len(entry.log)

    async def events(
        self, account: str, response_id: str, after: int, wait: float
    ) -> list[tuple[int, bytes]]:
        """Events numbered above `after`."""
        entry = self._live(account, response_id)
        if entry is None:
            return []
        if len(entry.log) <= after + 1 and wait > 0:
            try:
                await asyncio.wait_for(entry.changed.wait(), wait)
            except TimeoutError:
                return []
            entry = self._live(account, response_id)
            if entry is None:
                return []
        start = max(after + 1, 0)
        return [(start + i, data) for i, data in enumerate(entry.log[start:])]
