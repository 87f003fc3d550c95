"""Redis work per gateway request, from redis-server's own INFO counters."""

from __future__ import annotations

from dataclasses import dataclass, field

import redis

from tests.bench import procstat


@dataclass(frozen=True, slots=True)
class RedisCounters:
    """Commands by name, and read events (one per client round trip, pipelines included)."""

    commands: dict[str, int] = field(default_factory=dict)
    reads: int = 0

    def minus(self, before: RedisCounters) -> RedisCounters:
        """The counts between two snapshots."""
        names = set(self.commands) | set(before.commands)
        diff = {n: self.commands.get(n, 0) - before.commands.get(n, 0) for n in names}
        return RedisCounters({n: v for n, v in diff.items() if v}, self.reads - before.reads)

    @property
    def total(self) -> int:
        """All commands."""
        return sum(self.commands.values())


class RedisWatch:
    """One persistent connection reading INFO, so that snapshots cost a known two reads."""

    def __init__(self, url: str, pid: int | None = None) -> None:
        self._client = redis.Redis.from_url(url)
        self._own_reads = 0
        self.pid = pid  # redis-server's, to read its CPU time

    def cpu_seconds(self) -> float:
        """redis-server's CPU time so far (0 when its pid is unknown)."""
        return procstat.cpu_seconds([self.pid]) if self.pid else 0.0

    def snapshot(self) -> RedisCounters:
        """Current counters, net of this watcher's own INFO calls."""
        stats = self._client.info("commandstats")
        reads = int(self._client.info("stats").get("total_reads_processed", 0))
        commands = {
            name.removeprefix("cmdstat_"): int(value["calls"])
            for name, value in stats.items()
            if isinstance(value, dict) and name not in ("cmdstat_info", "cmdstat_client")
        }
        self._own_reads += 2
        return RedisCounters(commands, reads - self._own_reads)

    def close(self) -> None:
        """Drop the connection."""
        self._client.close()
