"""Which Redis modes the store suite runs on.

A test module marked `redis_modes` (the store suite: identity, usage, quota, responses, jobs,
audit) runs on memory://, one redis-server, a 3-master / 3-replica Redis Cluster and a
1-master / 1-replica / 3-sentinel set-up; every other test on memory:// and one redis-server.
`make test` runs the marked modules on every mode (the cluster and the sentinels are started
once per session, ~8 s); `make soak` adds the failover runs of tests/soak."""

from __future__ import annotations

MARK = "redis_modes"
BASE_MODES = ["memory", "redis"]
ALL_MODES = [*BASE_MODES, "cluster", "sentinel"]
