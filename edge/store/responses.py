"""Stored responses and their event logs: the record, the interface, the `memory://` version.

A response's state changes and event appends go through one conditional operation, `append`,
so that whoever moves a response to a terminal status (the worker that ran it, a cancel from
any replica, a takeover after a crash) does so exactly once, and nothing is logged after it.

Every write also counts the bytes it stores against the account, in the same atomic step: a
response holds the bytes of its record, its object, its event log and its entries in the
account's item index, plus a flat overhead. A response's bytes are freed when it is deleted
or, once it has expired, by the next write or read of the account's storage (each of which
first forgets the responses whose retention has passed), so the count is exact whenever it
is checked.
"""

from __future__ import annotations

import asyncio
import copy
import re
import time
from collections.abc import Collection, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import orjson

TERMINAL = frozenset({"completed", "failed", "cancelled", "incomplete"})

# Why a `create` or an `append` was refused.
REFUSED = -1  # terminal already, or not in the expected status
MISSING = -2  # no such response (expired or deleted)
FENCED = -3  # another attempt owns the run now
OVER_LIMIT = -4  # the account's stored bytes would pass its `storage_bytes`
OVER_CAP = -5  # the response would hold more than `max_stored_response_bytes`

# Counted for each stored response beyond its serialized bytes: its keys, its small fields
# (status, attempt, sequence) and its entry in the account's accounting. The same figures are
# written in edge/lua/responses_lib.lua.
RESPONSE_OVERHEAD = 256
# Counted for each entry of the item index, beyond the item's and the response's ids.
ITEM_OVERHEAD = 64
# Record fields kept apart from the JSON blob in Redis, because the append script reads or
# writes them; the blob and the object are counted apart alike on both stores.
LIVE_FIELDS = ("response", "status", "attempt")
# An item id that can be indexed (and so referenced): ours and providers' ids are short, plain.
_ITEM_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}\Z")


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


def indexable(item_id: object) -> bool:
    """Whether an item id can be indexed (and so referenced with `item_reference`)."""
    return isinstance(item_id, str) and bool(_ITEM_ID.match(item_id))


def _ids(items: Any) -> Iterator[str]:
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and indexable(item.get("id")):
            yield item["id"]


def output_ids(response: dict[str, Any] | None) -> list[str]:
    """The ids of a response object's output items that the item index keeps."""
    return list(dict.fromkeys(_ids((response or {}).get("output"))))


def item_ids(record: StoredResponse, unindexed: Collection[str] = ()) -> list[str]:
    """The item ids a stored record adds to its account's index: its input items (but those in
    `unindexed`: copies of items that another response holds) and its output items."""
    if not record.stored:
        return []
    own = [i for i in _ids(record.input_items) if i not in unindexed]
    return list(dict.fromkeys([*own, *output_ids(record.response)]))


def record_blobs(record: StoredResponse) -> tuple[bytes, bytes]:
    """A record as stored: the blob of its fixed fields, and its response object."""
    rest = {k: v for k, v in record.to_json().items() if k not in LIVE_FIELDS}
    return orjson.dumps(rest), orjson.dumps(record.response)


def base_size(rest: bytes, response: bytes, events: list[bytes]) -> int:
    """What a stored response counts before its item index entries."""
    return RESPONSE_OVERHEAD + len(rest) + len(response) + sum(len(e) for e in events)


def record_size(record: StoredResponse, events: list[bytes] | None = None) -> int:
    """The bytes a record (with `events` as its log) counts, its index entries included."""
    size = base_size(*record_blobs(record), list(events or []))
    return size + sum(item_bytes(i, record.id) for i in item_ids(record))


def item_bytes(item_id: str, response_id: str) -> int:
    """What one entry of the item index counts."""
    return len(item_id) + len(response_id) + ITEM_OVERHEAD


@dataclass(frozen=True, slots=True)
class Room:
    """What a write may store: the account's `storage_bytes` (None: no limit) and the one
    response's `max_stored_response_bytes` (None: no cap). `strict`: a write that would take
    the account past its limit is refused; else it is counted (the answer it stores was
    already given; the next store is refused)."""

    limit: int | None = None
    cap: int | None = None
    strict: bool = True


@dataclass(frozen=True, slots=True)
class Storage:
    """An account's stored bytes now; `room_at`: when enough of them will have expired for a
    write of the asked size to fit (None: never, or not known)."""

    used: int
    responses: int
    room_at: float | None = None


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
        self,
        record: StoredResponse,
        ttl: float,
        events: list[bytes] | None = None,
        room: Room | None = None,
        unindexed: Collection[str] = (),
    ) -> int:
        """Insert or replace a record (and start its event log with `events`), count its bytes
        against its account and index its items (see `item_ids`), all or nothing.

        Returns the bytes the response holds, or OVER_CAP / OVER_LIMIT when `room` refuses it.
        """

    async def get(self, account: str, response_id: str) -> StoredResponse | None:
        """One record, or None when unknown, expired or another account's."""

    async def delete(self, account: str, response_id: str) -> bool:
        """Remove a record and its log, freeing its bytes; False when there was none."""

    async def append(
        self,
        account: str,
        response_id: str,
        events: list[bytes],
        change: Change,
        ttl: float,
        room: Room | None = None,
    ) -> int:
        """Log events (numbered from the log's length) and apply the change, counting the bytes
        they add (and indexing the output items of a new response object), all or nothing.

        Returns the log's new length, or REFUSED, MISSING or FENCED; with `room`, OVER_CAP or
        OVER_LIMIT when the write would add bytes past either bound.
        """

    async def events(
        self, account: str, response_id: str, after: int, wait: float
    ) -> list[tuple[int, bytes]]:
        """Events numbered above `after`, waiting up to `wait` seconds for the first one."""

    async def storage(
        self, account: str, need: int = 0, limit: int | None = None, writing: bool = False
    ) -> Storage:
        """The account's stored bytes and responses (expired ones forgotten first); with `need`
        and `limit`, when a write of `need` bytes will fit as responses expire. `writing`: read
        before a write, refused (as the write would be) while Redis is at its maxmemory."""

    async def find_items(self, account: str, item_ids: list[str]) -> list[str | None]:
        """The response that holds each item (by the account's index), or None."""


@dataclass(slots=True)
class _Entry:
    record: StoredResponse
    expires: float
    log: list[bytes] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    size: int = 0  # the bytes counted for it
    response_bytes: int = 0  # of which its response object's
    items: set[str] = field(default_factory=set)  # its entries in the item index


@dataclass(slots=True)
class _Account:
    used: int = 0
    ids: set[str] = field(default_factory=set)  # its responses
    items: dict[str, str] = field(default_factory=dict)  # item id -> response id


def _room_at(used: int, need: int, limit: int, entries: list[tuple[float, int]]) -> float | None:
    """When `need` more bytes fit under `limit`, as the entries (expiry, bytes) expire; None
    when they never will by expiry alone."""
    if need > limit:
        return None
    if used + need <= limit:
        return time.time()
    for expires, size in sorted(entries):
        used -= size
        if used + need <= limit:
            return expires
    return None


class MemoryResponses:
    """Responses in a dict; every operation runs without awaiting, so each is atomic."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._accounts: dict[str, _Account] = {}
        self._next_sweep = 0.0

    def _drop(self, account: str, response_id: str) -> _Entry | None:
        """Remove an entry and what its account counted for it."""
        entry = self._entries.pop((account, response_id), None)
        held = self._accounts.get(account)
        if entry is None or held is None:
            return entry
        held.used -= entry.size
        held.ids.discard(response_id)
        for item in entry.items:
            if held.items.get(item) == response_id:
                del held.items[item]
        if not held.ids:
            del self._accounts[account]
        entry.changed.set()  # a waiting reader notices at once
        return entry

    def _live(self, account: str, response_id: str) -> _Entry | None:
        entry = self._entries.get((account, response_id))
        if entry is not None and entry.expires <= time.time():
            self._drop(account, response_id)
            return None
        return entry

    def _collect(self, account: str) -> _Account:
        """The account's accounting, its expired responses forgotten."""
        held = self._accounts.get(account)
        if held is None:
            return _Account()
        now = time.time()
        for response_id in list(held.ids):
            entry = self._entries.get((account, response_id))
            if entry is not None and entry.expires <= now:
                self._drop(account, response_id)
        return self._accounts.get(account) or _Account()

    def _sweep(self) -> None:
        now = time.time()
        if now < self._next_sweep:
            return
        self._next_sweep = now + 60.0
        for account, response_id in [k for k, e in self._entries.items() if e.expires <= now]:
            self._drop(account, response_id)

    async def create(
        self,
        record: StoredResponse,
        ttl: float,
        events: list[bytes] | None = None,
        room: Room | None = None,
        unindexed: Collection[str] = (),
    ) -> int:
        """Insert or replace a record, counting its bytes."""
        self._sweep()
        held = self._collect(record.account)
        rest, response = record_blobs(record)
        items = item_ids(record, unindexed)
        log = list(events or [])
        size = base_size(rest, response, log) + sum(item_bytes(i, record.id) for i in items)
        old = self._entries.get((record.account, record.id))
        if room is not None:
            if room.cap is not None and size > room.cap:
                return OVER_CAP
            after = held.used - (old.size if old else 0) + size
            if room.strict and room.limit is not None and after > room.limit:
                return OVER_LIMIT
        self._drop(record.account, record.id)
        entry = _Entry(copy.deepcopy(record), time.time() + ttl, log)
        entry.size, entry.response_bytes, entry.items = size, len(response), set(items)
        self._entries[(record.account, record.id)] = entry
        account = self._accounts.setdefault(record.account, _Account())
        account.used += size
        account.ids.add(record.id)
        account.items.update(dict.fromkeys(items, record.id))
        return size

    async def get(self, account: str, response_id: str) -> StoredResponse | None:
        """One record."""
        entry = self._live(account, response_id)
        return copy.deepcopy(entry.record) if entry else None

    async def delete(self, account: str, response_id: str) -> bool:
        """Remove a record and its log."""
        if self._live(account, response_id) is None:
            return False
        self._drop(account, response_id)
        return True

    async def append(
        self,
        account: str,
        response_id: str,
        events: list[bytes],
        change: Change,
        ttl: float,
        room: Room | None = None,
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
        added = sum(len(e) for e in events)
        response = orjson.dumps(change.response) if change.response is not None else None
        items = [i for i in output_ids(change.response) if i not in entry.items]
        if response is not None:
            added += len(response) - entry.response_bytes
            added += sum(item_bytes(i, response_id) for i in items)
        if room is not None and added > 0:
            held = self._collect(account)
            if room.cap is not None and entry.size + added > room.cap:
                return OVER_CAP
            if room.limit is not None and held.used + added > room.limit:
                return OVER_LIMIT
        entry.log.extend(events)
        if change.status is not None:
            record.status = change.status
        if change.claim is not None:
            record.attempt = change.claim
        if response is not None:
            record.response = copy.deepcopy(change.response or {})
            entry.response_bytes = len(response)
            entry.items.update(items)
        entry.size += added
        account_held = self._accounts.setdefault(account, _Account())
        account_held.used += added
        account_held.ids.add(response_id)
        account_held.items.update(dict.fromkeys(items, response_id))
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

    async def storage(
        self, account: str, need: int = 0, limit: int | None = None, writing: bool = False
    ) -> Storage:
        """The account's stored bytes now (a process has no maxmemory to refuse `writing`)."""
        held = self._collect(account)
        room_at = None
        if limit is not None and need > 0:
            entries = [
                (entry.expires, entry.size)
                for rid in held.ids
                if (entry := self._entries.get((account, rid))) is not None
            ]
            room_at = _room_at(held.used, need, limit, entries)
        return Storage(held.used, len(held.ids), room_at)

    async def find_items(self, account: str, item_ids: list[str]) -> list[str | None]:
        """The response that holds each item."""
        held = self._accounts.get(account)
        found: list[str | None] = []
        for item in item_ids:
            rid = held.items.get(item) if held is not None else None
            found.append(rid if rid is not None and self._live(account, rid) else None)
        return found
