"""Stored responses in Redis: a hash per response and a Stream as its event log, and per
account the accounting of the bytes they hold and the index of their items.

A response's keys carry its account's hash tag, as the account's accounting does: every script
that writes a response also counts its bytes, in one slot of a Redis Cluster. (Earlier releases
tagged a response with its account and id; on one server those are still read, deleted and
finished, so nothing stored before an upgrade is lost.)
Every write is one script (`edge/lua/responses_*.lua`, with the shared functions of
`responses_lib.lua`) that also counts the bytes it stores against the account, so the count
moves with the data, all or nothing.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import orjson

from edge.store.clients import Client
from edge.store.driver import DriverBacked
from edge.store.responses import (
    Change,
    Room,
    Storage,
    StoredResponse,
    base_size,
    item_ids,
    output_ids,
    record_blobs,
)
from edge.store.scripts import Script

_PREFIX = "edge:resp:"
_STORED = "edge:stored:"
_LIB = "responses_lib.lua"


def response_keys(account: str, response_id: str) -> tuple[str, str]:
    """A response's record hash and event log, in its account's slot."""
    key = f"{_PREFIX}{{{account}}}:{response_id}"
    return key, f"{key}:log"


def legacy_keys(account: str, response_id: str) -> tuple[str, str]:
    """Where earlier releases kept a response (a slot of its own)."""
    tag = f"{{{account}/{response_id}}}"
    return f"{_PREFIX}{tag}", f"{_PREFIX}{tag}:log"


MISSING = -2  # the append script's answer for a response that is not there


def accounting_keys(account: str) -> list[str]:
    """An account's storage accounting: its bytes, each response's bytes, each response's
    index entries, each response's expiry, and the item index."""
    tag = f"{_STORED}{{{account}}}"
    return [f"{tag}:bytes", f"{tag}:sizes", f"{tag}:owned", f"{tag}:expiry", f"{tag}:items"]


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _seq(entry_id: bytes | str) -> int:
    return int(_text(entry_id).partition("-")[0])


def _bounds(room: Room | None) -> tuple[int, int]:
    """(limit, cap) as the scripts take them: -1 for none."""
    if room is None:
        return -1, -1
    limit = -1 if room.limit is None else room.limit
    return limit, -1 if room.cap is None else room.cap


class RedisResponses(DriverBacked):
    """The Redis implementation of ResponseStore."""

    def __init__(self, redis: Client, blocking: Client, legacy: bool = True) -> None:
        self._r = redis
        # Also look for responses where earlier releases kept them: one server only, since no
        # earlier release ran on a cluster (where the two layouts' keys share no slot).
        self._legacy = legacy
        self._blocking = blocking  # a client whose socket timeout outlasts a blocking read
        self._create = Script(redis, "responses_create.lua", prelude=_LIB)
        self._append = Script(redis, "responses_append.lua", prelude=_LIB)
        self._delete = Script(redis, "responses_delete.lua", prelude=_LIB)
        self._storage = Script(redis, "responses_storage.lua", prelude=_LIB)

    async def create(
        self,
        record: StoredResponse,
        ttl: float,
        events: list[bytes] | None = None,
        room: Room | None = None,
        unindexed: Collection[str] = (),
    ) -> int:
        """Insert or replace a record (and start its log), counting its bytes, in one script."""
        rest, response = record_blobs(record)
        log = list(events or [])
        size = base_size(rest, response, log)
        limit, cap = _bounds(room)
        strict = room is not None and room.strict
        args: list[str | int | bytes] = [
            record.id,
            _ms(ttl),
            limit,
            cap,
            "1" if strict else "0",
            size,
            rest,
            response,
            record.status,
            record.attempt or "",
            len(log),
            *log,
            *item_ids(record, unindexed),
        ]
        keys = [*response_keys(record.account, record.id), *accounting_keys(record.account)]
        return int(await self._create(keys, args))

    async def get(self, account: str, response_id: str) -> StoredResponse | None:
        """One record."""
        fields = ["record", "response", "status", "attempt"]
        raw: list[Any] = await self._r.hmget(response_keys(account, response_id)[0], fields)
        if raw[0] is None and self._legacy:
            raw = await self._r.hmget(legacy_keys(account, response_id)[0], fields)
        if raw[0] is None:
            return None
        data = orjson.loads(raw[0])
        data["response"] = orjson.loads(raw[1]) if raw[1] else {}
        data["status"] = _text(raw[2]) if raw[2] else "completed"
        data["attempt"] = _text(raw[3]) if raw[3] else None
        return StoredResponse.from_json(data)

    async def delete(self, account: str, response_id: str) -> bool:
        """Remove a record and its log, giving its bytes back."""
        keys = [*response_keys(account, response_id), *accounting_keys(account)]
        removed = bool(int(await self._delete(keys, [response_id])))
        if self._legacy:
            # An earlier release's copy goes too, or a read would find it after this delete.
            keys[:2] = legacy_keys(account, response_id)
            removed = bool(int(await self._delete(keys, [response_id]))) or removed
        return removed

    async def append(
        self,
        account: str,
        response_id: str,
        events: list[bytes],
        change: Change,
        ttl: float,
        room: Room | None = None,
    ) -> int:
        """Log events and apply the change, or refuse (see responses_append.lua)."""
        limit, cap = _bounds(room)
        items = output_ids(change.response) if change.response is not None else []
        args: list[str | int | bytes] = [
            _ms(ttl),
            change.expect or "",
            change.attempt or "",
            change.status or "",
            change.claim or "",
            orjson.dumps(change.response) if change.response is not None else "",
            response_id,
            limit,
            cap,
            len(items),
            *items,
            *events,
        ]
        keys = [*response_keys(account, response_id), *accounting_keys(account)]
        found = int(await self._append(keys, args))
        if found == MISSING and self._legacy:
            # A run an earlier release started finishes where it began.
            keys[:2] = legacy_keys(account, response_id)
            found = int(await self._append(keys, args))
        return found

    async def events(
        self, account: str, response_id: str, after: int, wait: float
    ) -> list[tuple[int, bytes]]:
        """Events numbered above `after`, blocking up to `wait` seconds for the first."""
        _, log = response_keys(account, response_id)
        start = "0-0" if after < 0 else f"{after}-1"
        streams: dict[Any, Any] = {log: start}
        if self._legacy:
            # One server: a single XREAD waits on both names; only one of them exists.
            streams[legacy_keys(account, response_id)[1]] = start
        client = self._blocking if wait > 0 else self._r
        block = _ms(wait) if wait > 0 else None
        replies: Any = await client.xread(streams, block=block)
        out: list[tuple[int, bytes]] = []
        for _stream, entries in replies or []:
            for entry_id, fields in entries:
                out.append((_seq(entry_id), fields[b"data"]))
        return out

    async def storage(
        self, account: str, need: int = 0, limit: int | None = None, writing: bool = False
    ) -> Storage:
        """The account's stored bytes now (see responses_storage.lua)."""
        args: list[str | int | bytes] = [need, -1 if limit is None else limit, int(writing)]
        used, responses, room_at = await self._storage(accounting_keys(account), args)
        return Storage(int(used), int(responses), int(room_at) / 1000 if room_at >= 0 else None)

    async def find_items(self, account: str, item_ids: list[str]) -> list[str | None]:
        """The response each item's index entry names (it may have expired since)."""
        if not item_ids:
            return []
        index = accounting_keys(account)[4]
        found: list[Any] = await self._r.hmget(index, item_ids)
        return [_text(v) if v is not None else None for v in found]
