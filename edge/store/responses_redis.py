"""Stored responses in Redis: a hash per response and a Stream as its event log.

Both keys of a response share a hash tag, so the append script works on Redis Cluster too.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import orjson
from redis.asyncio import Redis

from edge.store.responses import Change, StoredResponse

_PREFIX = "edge:resp:"
# Record fields kept apart from the JSON blob because the append script reads or writes them.
_LIVE_FIELDS = ("response", "status", "attempt")


def _keys(account: str, response_id: str) -> tuple[str, str]:
    tag = f"{{{account}/{response_id}}}"
    return f"{_PREFIX}{tag}", f"{_PREFIX}{tag}:log"


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _seq(entry_id: bytes | str) -> int:
    return int(_text(entry_id).partition("-")[0])


class RedisResponses:
    """The Redis implementation of ResponseStore."""

    def __init__(self, redis: Redis, blocking: Redis) -> None:
        self._r = redis
        self._blocking = blocking  # a client whose socket timeout outlasts a blocking read
        script = resources.files("edge").joinpath("lua", "responses_append.lua")
        self._append = redis.register_script(script.read_text("utf-8"))

    async def create(
        self, record: StoredResponse, ttl: float, events: list[bytes] | None = None
    ) -> None:
        """Insert or replace a record (and start its log), in one transaction."""
        key, log = _keys(record.account, record.id)
        rest = {k: v for k, v in record.to_json().items() if k not in _LIVE_FIELDS}
        fields: Any = {
            "record": orjson.dumps(rest),
            "response": orjson.dumps(record.response),
            "status": record.status,
            "seq": len(events or []),
        }
        if record.attempt is not None:
            fields["attempt"] = record.attempt
        pipe = self._r.pipeline(transaction=True)
        pipe.delete(key, log)
        pipe.hset(key, mapping=fields)
        for seq, data in enumerate(events or []):
            pipe.xadd(log, {"data": data}, id=f"{seq}-1")
        pipe.pexpire(key, _ms(ttl))
        if events:
            pipe.pexpire(log, _ms(ttl))
        await pipe.execute()

    async def get(self, account: str, response_id: str) -> StoredResponse | None:
        """One record."""
        key, _ = _keys(account, response_id)
        raw: list[Any] = await self._r.hmget(key, ["record", "response", "status", "attempt"])
        if raw[0] is None:
            return None
        data = orjson.loads(raw[0])
        data["response"] = orjson.loads(raw[1]) if raw[1] else {}
        data["status"] = _text(raw[2]) if raw[2] else "completed"
        data["attempt"] = _text(raw[3]) if raw[3] else None
        return StoredResponse.from_json(data)

    async def delete(self, account: str, response_id: str) -> bool:
        """Remove a record and its log."""
        removed = await self._r.delete(*_keys(account, response_id))
        return bool(removed)

    async def append(
        self, account: str, response_id: str, events: list[bytes], change: Change, ttl: float
    ) -> int:
        """Log events and apply the change, or refuse (see responses_append.lua)."""
        args: list[Any] = [
            _ms(ttl),
            change.expect or "",
            change.attempt or "",
            change.status or "",
            change.claim or "",
            orjson.dumps(change.response) if change.response is not None else "",
            *events,
        ]
        result = await self._append(keys=list(_keys(account, response_id)), args=args)
        return int(result)

    async def events(
        self, account: str, response_id: str, after: int, wait: float
    ) -> list[tuple[int, bytes]]:
        """Events numbered above `after`, blocking up to `wait` seconds for the first."""
        _, log = _keys(account, response_id)
        start = "0-0" if after < 0 else f"{after}-1"
        client = self._blocking if wait > 0 else self._r
        block = _ms(wait) if wait > 0 else None
        replies: Any = await client.xread({log: start}, block=block)
        out: list[tuple[int, bytes]] = []
        for _stream, entries in replies or []:
            for entry_id, fields in entries:
                out.append((_seq(entry_id), fields[b"data"]))
        return out
