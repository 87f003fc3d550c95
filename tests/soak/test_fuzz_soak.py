"""Ten minutes of hypothesis against a real `edge serve` on Redis: every public route and the
admin API, valid calls with fields mutated, dropped or added, arbitrary and invalid bodies,
odd paths, headers, encodings and credentials, and the translated-call corpus (Gemini media
parts, Anthropic tool results, Responses items, schemas the echo model reads: valid bodies with
odd values deep inside, tests/support/fuzz_corpus.py). Zero 500s, every error a JSON body, no
traceback in the log, the process alive at the end. (A seeded 1,500-call run is in make test:
tests/test_fuzz_inputs.py.)"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.fuzz import (
    Call,
    Target,
    admin_calls,
    corpus_calls,
    fuzz_tenants,
    inference_calls,
)
from tests.support.gateway import GatewayProcess, gateway_env
from tests.support.redis_server import RedisServer

pytestmark = [
    pytest.mark.soak,
    pytest.mark.timeout(900),
    # A failing example's repr can be megabytes (a 100,000-deep body): say so, do not fail on it.
    pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning"),
]
MINUTES = float(os.environ.get("EDGE_FUZZ_MINUTES", "10"))
BATCH = settings(
    max_examples=400,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def test_ten_minutes_of_fuzzing(redis_server: RedisServer) -> None:
    redis_server.command("FLUSHALL")
    proc = GatewayProcess(gateway_env(redis_server.url, None, EDGE_LOG_LEVEL="INFO")).start()
    target = Target("127.0.0.1", proc.port)
    key = fuzz_tenants(target)

    corpus = {"calls": 0}

    @BATCH
    @given(call=st.one_of(inference_calls(key), admin_calls(), corpus_calls(key)))
    def batch(call: Call) -> None:
        corpus["calls"] += call.source == "corpus"
        target.check(call)

    deadline = time.monotonic() + MINUTES * 60
    batches = 0
    try:
        while time.monotonic() < deadline:
            batch()  # a fresh random seed each time
            batches += 1
    finally:
        target.close()
        alive = proc.proc is not None and proc.proc.poll() is None
        proc.stop()
    calls = sum(target.statuses.values())
    print(
        f"{calls} calls in {batches} batches ({corpus['calls']} from the translated-call corpus): "
        f"{sorted(target.statuses.items())}"
    )
    assert alive, "the gateway died"
    log = Path(proc.log).read_text()
    assert "unhandled error" not in log and "Traceback" not in log, log[-3000:]
