"""The startup check that every Lua script's keys hash to one slot of a Redis Cluster.

A script (or MULTI) naming keys of two slots is refused by a cluster, and by redis-py before it
is sent: so a key layout that breaks the rule would fail every call of that kind. The keys here
are built by the same functions the stores build them with, for a sample of accounts, scopes,
days and responses."""

from __future__ import annotations

from collections.abc import Iterator

from redis.crc import key_slot

from edge.store.quota import counter_key, reservation_key, slots_key, window_key
from edge.store.responses_redis import accounting_keys, response_keys
from edge.store.usage import UsageRecord

ACCOUNTS = ("acct_1", "a", "tenant-with-a-long-name", "{odd}", "x/y")
DAYS = ("2026-01-01", "2026-12-31")


class SlotError(RuntimeError):
    """A script's keys span more than one slot."""


def key_sets() -> Iterator[tuple[str, list[str]]]:
    """(script, the keys of one call of it) for a sample of calls."""
    for account in ACCOUNTS:
        scopes = ("acct", "key:k1", "key:k2")
        counters = [counter_key(account, s, f, "b0") for s in scopes for f in ("tokens", "cost")]
        windows = [window_key(account, s, "requests") for s in scopes]
        marker = reservation_key(account, "r1")
        inflight = [slots_key(account, s) for s in scopes]
        reserve = [marker, *counters, *inflight, *(w + ":mw" for w in windows)]
        reserve += [f"{w}:sw:{n}" for w in windows for n in (7, 8)]
        yield "quota_reserve.lua", reserve
        for window in windows:
            yield "quota_lease_take.lua", [f"{window}:sw:7", f"{window}:sw:8"]
        for day in DAYS:
            record = UsageRecord(
                (f"account:{account}", "key:k1"), (("requests", 1),), day, (account, "k1\tm")
            )
            yield "quota_settle.lua", [marker, *counters, *inflight, *record.keys]
        for response in ("resp_1", "resp_{2}", "r"):
            keys = [*response_keys(account, response), *accounting_keys(account)]
            for script in ("responses_create.lua", "responses_append.lua", "responses_delete.lua"):
                yield script, keys
        yield "responses_storage.lua", accounting_keys(account)


def check_slots() -> int:
    """Raise SlotError when a sampled call's keys span slots; else the number checked."""
    checked = 0
    for script, keys in key_sets():
        found = {key_slot(k.encode()) for k in keys}
        if len(found) != 1:
            raise SlotError(f"{script}: keys in {len(found)} cluster slots: {keys}")
        checked += 1
    return checked
