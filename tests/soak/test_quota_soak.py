"""Quota exactness, twenty runs: two gateway processes, a hundred clients calling one fresh key
until its token budget refuses, every fifth run across a Redis restart. The budget and the
concurrency limit are never exceeded; every reservation is settled or expires. (Four runs of
the same in make test: tests/test_reliability_quota.py.)"""

from __future__ import annotations

import pytest

from tests.support.fake_upstream import FakeUpstream
from tests.test_reliability_quota import BUDGET, CONCURRENT, check, one_run, pair  # noqa: F401

pytestmark = [pytest.mark.soak, pytest.mark.timeout(900)]
RUNS = 20


async def test_twenty_runs_also_across_restarts(pair, fake: FakeUpstream) -> None:  # noqa: F811
    replicas, server = pair
    admitted, peaks, restarts = [], [], 0
    for n in range(RUNS):
        restart = n % 5 == 4
        run = await one_run(replicas, server, fake, restart_at=0.3 if restart else None)
        # The run after a restart too: the first call on each pooled connection the restart
        # closed fails, which opens the quota breaker (503s; settlements wait and are retried,
        # once each). Never over the limit all the same.
        check(run, restarted=restart or (n % 5 == 0 and n > 0))
        admitted.append(run.admitted_tokens)
        peaks.append(run.peak_concurrent)
        restarts += restart
    print(
        f"{RUNS} runs ({restarts} across a Redis restart): admitted tokens per run "
        f"{min(admitted)}..{max(admitted)} of {BUDGET}; peak concurrency {max(peaks)} of "
        f"{CONCURRENT}"
    )
