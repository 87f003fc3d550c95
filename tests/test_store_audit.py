"""The audit log reads back newest first, per account, on every store and Redis mode."""

from __future__ import annotations

import pytest

from edge.store import open_store
from edge.store.audit import AuditEntry

pytestmark = pytest.mark.redis_modes


async def test_entries_read_back_newest_first_by_account(store_url: str) -> None:
    async with open_store(store_url, redis_timeout=1.0) as store:
        for n in range(5):
            account = "a1" if n % 2 == 0 else "a2"
            entry = AuditEntry("bootstrap", None, "key.create", f"key:k{n}", account)
            await store.audit.append(entry)
        every = await store.audit.list(None, 10, None)
        assert [e.target for e in every] == [f"key:k{n}" for n in (4, 3, 2, 1, 0)]
        mine = await store.audit.list("a1", 2, None)
        assert [e.target for e in mine] == ["key:k4", "key:k2"]
        older = await store.audit.list("a1", 2, mine[-1].id)
        assert [e.target for e in older] == ["key:k0"]
