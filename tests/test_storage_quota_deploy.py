"""The shipped Redis has a memory bound it cannot be OOM-killed for, with a policy that never
drops a key: `maxmemory` well under the container's limit and `noeviction` in every rendered
overlay; and a Redis at its `maxmemory` makes edge answer 503 (never 500) while every quota
counter stays as it was."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from tests.support import kustomize
from tests.support.clock import Deadline
from tests.support.gateway import Live, gateway_env, settings_for, start_live, stop_live
from tests.support.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent
KUBE = ROOT / "deploy" / "kubernetes"
OVERLAYS = {"base": KUBE / "base"} | {
    k.parent.name: k.parent for k in sorted(KUBE.glob("overlays/*/kustomization.yaml"))
}
KUSTOMIZE, PASSED_OVER = kustomize.find()
UNITS = {"": 1, "k": 1000, "kb": 1024, "m": 10**6, "mb": 2**20, "g": 10**9, "gb": 2**30}
K8S_UNITS = {"": 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 10**3, "M": 10**6, "G": 10**9}


def _redis_bytes(text: str) -> int:
    """A redis.conf memory size ("768mb")."""
    number, unit = re.fullmatch(r"(\d+)([a-z]*)", text.lower()).groups()  # type: ignore[union-attr]
    return int(number) * UNITS[unit]


def _k8s_bytes(text: str) -> int:
    """A Kubernetes quantity ("1Gi")."""
    number, unit = re.fullmatch(r"(\d+)([A-Za-z]*)", text).groups()  # type: ignore[union-attr]
    return int(number) * K8S_UNITS[unit]


# These overlays point the gateway at a Redis run elsewhere (its operator sizes it) and ship none.
EXTERNAL = {"redis-cluster": "redis+cluster://", "redis-sentinel": "redis+sentinel://"}


def _render(name: str) -> list[dict[str, Any]]:
    if KUSTOMIZE is None:
        pytest.skip("no kustomize v5 or later here: " + "; ".join(PASSED_OVER))
    return KUSTOMIZE.render(OVERLAYS[name])


def _redis(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "edge-redis"]


@pytest.mark.parametrize("overlay", sorted(set(OVERLAYS) - set(EXTERNAL)))
def test_redis_has_a_maxmemory_under_its_limit_and_never_evicts(overlay: str) -> None:
    (sts,) = _redis(_render(overlay))
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
    maxmemory = _redis_bytes(args[args.index("--maxmemory") + 1])
    limit = _k8s_bytes(container["resources"]["limits"]["memory"])
    # Room beyond the data set for the fork that rewrites the AOF, buffers and fragmentation.
    assert 0 < maxmemory <= 0.8 * limit, (maxmemory, limit)


@pytest.mark.parametrize("overlay", sorted(EXTERNAL))
def test_an_external_redis_overlay_ships_no_redis_and_points_the_gateway_at_it(
    overlay: str,
) -> None:
    docs = _render(overlay)
    assert _redis(docs) == []
    (gateway,) = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "edge"]
    (container,) = gateway["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value", "") for e in container["env"]}
    assert env["EDGE_STORE_URL"].startswith(EXTERNAL[overlay]), env


def test_the_readme_says_how_to_size_redis() -> None:
    text = (ROOT / "README.md").read_text("utf-8")
    deployment = text[text.index("## Deployment") : text.index("## Performance")]
    for needed in ("maxmemory", "noeviction", "storage_bytes"):
        assert needed in deployment, needed


@pytest.fixture
async def full_redis(fake) -> Any:
    """A gateway on a Redis of its own whose `maxmemory` leaves a few MB above its use."""
    server = RedisServer().start()
    live = await start_live(settings_for(gateway_env(server.url, fake.url)))
    try:
        yield live, server
    finally:
        await stop_live(live)
        server.stop()


async def _post(live: Live, key: str, body: dict[str, Any]) -> int:
    assert live.http is not None
    async with live.http.post(
        f"{live.url}/v1/responses", json=body, headers={"Authorization": f"Bearer {key}"}
    ) as resp:
        await resp.read()
        return resp.status


def _counters(client: Redis) -> dict[bytes, Any]:
    """Every quota key with its value (string counters and sorted-set windows)."""
    out: dict[bytes, Any] = {}
    for key in client.scan_iter(match="edge:q:*", count=1000):
        kind = client.type(key)
        if kind == b"string":
            out[key] = client.get(key)
        elif kind == b"zset":
            out[key] = client.zrange(key, 0, -1, withscores=True)
    return out


async def test_a_full_redis_refuses_stores_and_keeps_every_counter(full_redis) -> None:
    live, server = full_redis
    tenant = await live.tenant(quota={"requests_per_day": 1000, "tokens_per_day": 10**9})
    plain = await live.tenant()
    assert await _post(live, tenant.key, {"model": "local/echo", "input": "first"}) == 200
    client = Redis.from_url(server.url)
    try:
        before = _counters(client)
        assert before, "the call counted nothing"
        maxmemory = int(client.info("memory")["used_memory"]) + 4 * 2**20
        client.config_set("maxmemory", maxmemory)
        client.config_set("maxmemory-policy", "noeviction")
        # Queued runs of 300 KB inputs: each record is written before the answer.
        big = {"model": "local/echo", "input": "z " * 150_000, "background": True}
        statuses = [await _post(live, tenant.key, big) for _ in range(40)]
        assert 503 in statuses, statuses  # refused as a store outage
        assert set(statuses) <= {200, 503}, statuses  # never a 500
        # Each refused write stored nothing: Redis stays within one write of its maxmemory.
        assert int(client.info("memory")["used_memory"]) <= maxmemory + 2 * 2**20
        # Past its maxmemory, a store: true call is refused before the provider is called, a
        # store: false one is not (an account without budgets: its admission needs no write).
        client.config_set("maxmemory", int(client.info("memory")["used_memory"]) - 2**20)
        assert await _post(live, plain.key, {"model": "local/echo", "input": "hi"}) == 503
        nostore = {"model": "local/echo", "input": "hi", "store": False}
        assert await _post(live, plain.key, nostore) == 200
        # Nothing was dropped to make room: every counter is still there.
        assert set(before) <= set(_counters(client))
        # Room made again (a larger maxmemory, or responses deleted): stores are let in.
        client.config_set("maxmemory", 0)
        deadline = Deadline(10)
        while await _post(live, tenant.key, big) != 200:
            deadline.check("stores were still refused with room in Redis")
            await asyncio.sleep(0.1)
    finally:
        client.close()
