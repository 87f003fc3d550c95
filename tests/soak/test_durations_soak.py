"""How long things take, measured and held to their bounds: the durations `make test` does not
assert (a busy machine makes any of them a coin toss there; `make test` proves each mechanism
by its outcome, and prints these figures at most). Each run repeats its scenario, prints its
figures (`make soak` runs with -rP), and fails past its bound.

The wrong key and unknown key timing goes with test_auth.py's proof that both do the same work.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import statistics
import time

import aiohttp
import pytest

from tests.support.gateway import gateway_env, settings_for, start_live, stop_live
from tests.support.redis_server import RedisServer

pytestmark = [pytest.mark.soak, pytest.mark.timeout(600)]


def _spread(samples: list[float]) -> str:
    samples = sorted(samples)
    q = len(samples) // 4
    return f"median {statistics.median(samples) * 1e3:.3f} ms (IQR {samples[q] * 1e3:.3f}-" + (
        f"{samples[3 * q] * 1e3:.3f})"
    )


async def test_a_wrong_key_and_an_unknown_key_take_the_same_time(
    redis_server: RedisServer,
) -> None:
    """Interleaved at random, so load from elsewhere falls on all alike. Warm: each id tried
    again and again (the identity cache answers); cold: each id tried once, after the cache
    expired (the store answers). A wrong secret for a rotated key is timed too."""
    redis_server.command("FLUSHALL")
    live = await start_live(settings_for(gateway_env(redis_server.url, None)))
    try:
        base = await live.tenant()
        rotated_from = await live.tenant(account=base.account)
        status, rotated = await live.admin("POST", f"/keys/{rotated_from.key_id}/rotate")
        assert status == 200
        cold_keys = [(await live.tenant(account=base.account)).key for _ in range(120)]
        await asyncio.sleep(1.2)  # past the identity cache's lifetime

        def wrong(key: str) -> str:
            prefix, key_id, secret = key.split("_", 2)
            return f"{prefix}_{key_id}_{secrets.token_urlsafe(48)[: len(secret)]}"

        def unknown() -> str:
            return wrong(f"ek_{secrets.token_hex(8)}_{base.key.split('_', 2)[2]}")

        async with aiohttp.ClientSession() as http:

            async def timed(key: str) -> float:
                started = time.perf_counter()
                async with http.get(
                    f"{live.url}/v1/models", headers={"Authorization": f"Bearer {key}"}
                ) as resp:
                    await resp.read()
                    assert resp.status == 401
                return time.perf_counter() - started

            stranger = unknown()
            await timed(stranger)
            await timed(wrong(base.key))
            await timed(wrong(rotated["key"]))
            rng = random.Random(5)
            results: dict[str, list[float]] = {}
            plan = [("warm wrong", ""), ("warm unknown", ""), ("warm rotated", "")] * 400
            plan += [("cold wrong", k) for k in cold_keys] + [("cold unknown", "")] * len(cold_keys)
            rng.shuffle(plan)
            for kind, key in plan:
                if kind == "warm wrong":
                    presented = wrong(base.key)
                elif kind == "warm unknown":
                    presented = stranger
                elif kind == "warm rotated":
                    presented = wrong(rotated["key"])
                elif kind == "cold wrong":
                    presented = wrong(key)
                else:
                    presented = unknown()
                results.setdefault(kind, []).append(await timed(presented))
    finally:
        await stop_live(live)
    pairs = [("warm wrong", "warm unknown"), ("warm rotated", "warm unknown")]
    pairs.append(("cold wrong", "cold unknown"))
    for one, other in pairs:
        a, b = statistics.median(results[one]), statistics.median(results[other])
        print(f"{one} {_spread(results[one])}; {other} {_spread(results[other])}")
        # No early exit for either: the medians differ by less than the noise of one request.
        assert abs(a - b) <= max(0.1 * min(a, b), 50e-6), (one, other, a, b)
