"""The append-only audit log of admin changes: who, what, when."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import orjson

from edge.store.clients import Client
from edge.store.driver import DriverBacked

AUDIT = "edge:audit"
MAX_ENTRIES = 100_000  # the oldest entries are trimmed past this


@dataclass(slots=True)
class AuditEntry:
    """One admin change."""

    actor: str  # "bootstrap", "key:<id>" or "jwt:<subject>"
    actor_account: str | None  # the admin's account; None for a global admin
    action: str  # e.g. "key.revoke", "quota.put"
    target: str  # e.g. "key:<id>", "account:<id>"
    account: str | None  # the account the change belongs to
    details: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)
    id: str = ""  # assigned by the store, increasing

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


class AuditLog(Protocol):
    """Append and read back, newest first."""

    async def append(self, entry: AuditEntry) -> str:
        """Store an entry; returns its id."""

    async def list(self, account: str | None, limit: int, before: str | None) -> list[AuditEntry]:
        """Newest first, optionally of one account, older than the id `before`."""


def _matches(entry: AuditEntry, account: str | None) -> bool:
    return account is None or entry.account == account


class MemoryAudit:
    """The log in a list."""

    def __init__(self) -> None:
        self._entries: list[AuditEntry] = []
        self._next = 0

    async def append(self, entry: AuditEntry) -> str:
        """Store an entry; returns its id."""
        self._next += 1
        entry.id = f"{self._next:012d}"
        self._entries.append(entry)
        del self._entries[:-MAX_ENTRIES]
        return entry.id

    async def list(self, account: str | None, limit: int, before: str | None) -> list[AuditEntry]:
        """Newest first."""
        out = []
        for entry in reversed(self._entries):
            if before is not None and entry.id >= before:
                continue
            if _matches(entry, account):
                out.append(entry)
                if len(out) >= limit:
                    break
        return out


class RedisAudit(DriverBacked):
    """The log as a Redis Stream: ids are increasing and shared by every replica."""

    def __init__(self, redis: Client) -> None:
        self._r = redis

    async def append(self, entry: AuditEntry) -> str:
        """Store an entry; returns its stream id."""
        data = entry.to_json()
        data.pop("id")
        raw = await self._r.xadd(
            AUDIT, {"e": orjson.dumps(data)}, maxlen=MAX_ENTRIES, approximate=True
        )
        entry.id = raw.decode() if isinstance(raw, bytes) else str(raw)
        return entry.id

    async def list(self, account: str | None, limit: int, before: str | None) -> list[AuditEntry]:
        """Newest first, paging through the stream until enough entries match."""
        out: list[AuditEntry] = []
        upper = f"({before}" if before else "+"
        while len(out) < limit:
            rows = await self._r.xrevrange(AUDIT, max=upper, min="-", count=500)
            if not rows:
                break
            for raw_id, fields in rows:
                entry_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
                data = orjson.loads((fields or {})[b"e"])
                entry = AuditEntry(**data, id=entry_id)
                if _matches(entry, account):
                    out.append(entry)
                    if len(out) >= limit:
                        break
            upper = f"({entry_id}"
        return out
