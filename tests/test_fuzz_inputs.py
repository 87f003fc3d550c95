"""Bad input, deliberately and at random, against a real `edge serve`: a corpus (wrong types in
every field of every client API and admin body, invalid JSON and UTF-8, deep nesting, bodies that
are not objects) and a short seeded `hypothesis` run over every public route and the admin API.
Zero 500s, zero crashes, every error a JSON body. The 10-minute run is in tests/soak.

Also: another account's response id and an unknown one answer alike, and a wrong secret for a
real key costs the same time as an unknown key. Oversized bodies (413) are in test_body_limit.py,
malformed HTTP in test_reliability_server.py, JWT attacks in test_jwt.py, foreign branches in
test_auth.py."""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.fuzz import (
    ADMIN_BODIES,
    INFERENCE,
    Call,
    Target,
    admin_calls,
    fuzz_tenants,
    inference_calls,
)
from tests.support.gateway import ADMIN_TOKEN, GatewayProcess, Live, gateway_env
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.timeout(180)
WRONG_TYPES: list[Any] = [None, True, 7, -1, 1.5, "s", "", [], [1], {}, {"a": 1}, 2**70]


@pytest.fixture(scope="module")
def target() -> Iterator[tuple[Target, str, GatewayProcess]]:
    """A gateway process (no provider configured: only the in-process echo model answers) and
    an invoke key for it."""
    proc = GatewayProcess(gateway_env("memory://", None, EDGE_LOG_LEVEL="INFO")).start()
    target = Target("127.0.0.1", proc.port)
    key = fuzz_tenants(target)
    yield target, key, proc
    target.close()
    assert proc.proc is not None and proc.proc.poll() is None, "the gateway died"
    proc.stop()
    log = Path(proc.log).read_text()
    assert "unhandled error" not in log and "Traceback" not in log, log[-3000:]


def test_wrong_types_in_every_field(target: tuple[Target, str, GatewayProcess]) -> None:
    gateway, key, _ = target
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    sent = 0
    for path, valid in INFERENCE.values():
        for field in valid:
            for value in WRONG_TYPES:
                body = json.dumps({**valid, field: value}).encode()
                gateway.check(Call("POST", path, body, headers))
                sent += 1
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"}
    new_key = orjson.dumps({"account": "acct_fuzz", "branch": "br-fuzz"})
    status, raw, _ = gateway.send(Call("POST", "/admin/v1/keys", new_key, admin))
    assert status == 201, raw
    key_id = orjson.loads(raw)["id"]
    for route, valid in ADMIN_BODIES.items():
        method, path = route.split(" ", 1)
        path = path.format(account="acct_fuzz", key_id=key_id, branch="br-fuzz")
        for field in valid or {"x": 1}:
            for value in WRONG_TYPES:
                body = json.dumps({**valid, field: value}).encode()
                gateway.check(Call(method, path, body, admin))
                sent += 1
    assert sent > 500
    print(f"{sent} calls, statuses {sorted(gateway.statuses.items())}")


def test_bodies_that_are_not_json_objects(target: tuple[Target, str, GatewayProcess]) -> None:
    gateway, key, _ = target
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    corpus = [
        b"",
        b"{",
        b"null",
        b"[]",
        b'"text"',
        b"1e999999",
        b'{"model": "local/echo", "messages": "\xff"}',
        b'{"model": "local/\xc3\x28echo"}',
        b'{"model": "\\ud800"}',
        b"\xef\xbb\xbf{}",
        b'{"a": 1, "a": 2}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        b'{"messages": [' + b'{"role": "user", "content": "x"},' * 20_000 + b"{}]}",
        b'{"model": "local/echo", "messages": [{"role": "user", "content": "'
        + b"x" * 4_000_000
        + b'"}], "max_tokens": 1}',
    ]
    for path, _ in INFERENCE.values():
        for body in corpus:
            gateway.check(Call("POST", path, body, headers))


def _hypothesis(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )


@_hypothesis(600)
@given(data=st.data())
def test_fuzz_every_public_route(
    target: tuple[Target, str, GatewayProcess], data: st.DataObject
) -> None:
    gateway, key, _ = target
    gateway.check(data.draw(inference_calls(key)))


@_hypothesis(400)
@given(data=st.data())
def test_fuzz_the_admin_api(
    target: tuple[Target, str, GatewayProcess], data: st.DataObject
) -> None:
    gateway, _, _ = target
    gateway.check(data.draw(admin_calls()))


async def test_another_accounts_response_and_an_unknown_one_look_alike(
    gateway: Live,
) -> None:
    assert gateway.http is not None
    mine, theirs = await gateway.tenant(), await gateway.tenant()
    async with gateway.http.post(
        f"{gateway.url}/v1/responses",
        json={"model": "local/echo", "input": "secret", "store": True},
        headers={"Authorization": f"Bearer {mine.key}"},
    ) as resp:
        assert resp.status == 200
        stored = (await resp.json())["id"]
    unknown = "resp_" + secrets.token_hex(len(stored.removeprefix("resp_")) // 2)
    for method, suffix in (
        ("GET", ""),
        ("GET", "/input_items"),
        ("GET", "?stream=true"),
        ("POST", "/cancel"),
        ("DELETE", ""),
    ):
        answers = []
        for rid in (stored, unknown):
            async with gateway.http.request(
                method,
                f"{gateway.url}/v1/responses/{rid}{suffix}",
                headers={"Authorization": f"Bearer {theirs.key}"},
            ) as resp:
                body = (await resp.read()).replace(rid.encode(), b"<id>")
                answers.append((resp.status, body))
        assert answers[0] == answers[1], (method, suffix, answers)
        assert answers[0][0] == 404


def _spread(samples: list[float]) -> str:
    samples = sorted(samples)
    q = len(samples) // 4
    return f"median {statistics.median(samples) * 1e3:.3f} ms (IQR {samples[q] * 1e3:.3f}-" + (
        f"{samples[3 * q] * 1e3:.3f})"
    )


async def test_a_wrong_key_and_an_unknown_key_take_the_same_time(
    redis_server: RedisServer,
) -> None:
    """Interleaved at random, so load from other tests falls on both alike. Warm: each id
    tried again and again (the identity cache answers); cold: each id tried once, after the
    cache expired (the store answers)."""
    from tests.support.gateway import settings_for, start_live, stop_live

    redis_server.command("FLUSHALL")
    live = await start_live(settings_for(gateway_env(redis_server.url, None)))
    try:
        base = await live.tenant()
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
            rng = random.Random(5)
            results: dict[str, list[float]] = {}
            plan = [("warm wrong", ""), ("warm unknown", "")] * 400
            plan += [("cold wrong", k) for k in cold_keys] + [("cold unknown", "")] * len(cold_keys)
            rng.shuffle(plan)
            for kind, key in plan:
                if kind == "warm wrong":
                    presented = wrong(base.key)
                elif kind == "warm unknown":
                    presented = stranger
                elif kind == "cold wrong":
                    presented = wrong(key)
                else:
                    presented = unknown()
                results.setdefault(kind, []).append(await timed(presented))
    finally:
        await stop_live(live)
    for phase in ("warm", "cold"):
        wrong_t, unknown_t = results[f"{phase} wrong"], results[f"{phase} unknown"]
        a, b = statistics.median(wrong_t), statistics.median(unknown_t)
        print(f"{phase}: wrong key {_spread(wrong_t)}; unknown key {_spread(unknown_t)}")
        # No early exit for either: the medians differ by less than the noise of one request.
        assert abs(a - b) <= max(0.1 * min(a, b), 50e-6), (phase, a, b)
