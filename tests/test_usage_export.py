"""Usage export: per account, key, model and day, over any range within retention, as CSV or
JSON lines, streamed; totals equal what the calls recorded, costs stay as priced at call time,
and a large export is written in bounded memory."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from edge.appkeys import QUOTA
from edge.cli import main
from edge.store import open_store
from edge.store.quota import reservation_key
from edge.store.records import Account
from edge.store.usage import UsageRecord, day_of
from tests.support.fake_upstream import FakeUpstream, Scenario
from tests.support.gateway import (
    ADMIN_TOKEN,
    GatewayProcess,
    Live,
    gateway_env,
    settings_for,
    start_live,
    stop_live,
)
from tests.support.recordings import recordings
from tests.support.redis_server import RedisServer

CHAT = {r.name: r for r in recordings("openai-chat")}
SUMMED = ("requests", "input_tokens", "output_tokens", "cost_micros")


async def _chat(live: Live, key: str, model: str) -> dict[str, Any]:
    assert live.http is not None
    body = {"model": model, "messages": [{"role": "user", "content": "count these words"}]}
    async with live.http.post(
        f"{live.url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
    ) as resp:
        assert resp.status == 200
        answer: dict[str, Any] = await resp.json()
        return answer


async def _export(live: Live, query: str, token: str = ADMIN_TOKEN) -> tuple[int, str]:
    assert live.http is not None
    async with live.http.get(
        f"{live.url}/admin/v1/usage/export?{query}", headers={"Authorization": f"Bearer {token}"}
    ) as resp:
        return resp.status, await resp.text()


async def _settled(live: Live) -> None:
    """Wait until every call's usage is written (settles run in the background)."""
    assert live.app is not None
    await live.app[QUOTA].wait_settled(10)


async def test_export_groups_and_totals_match_the_calls(gateway: Live, fake: FakeUpstream) -> None:
    first = await gateway.tenant(account="acct_exp_a")
    second = await gateway.tenant(account="acct_exp_b")
    spent: dict[tuple[str, str, str], dict[str, int]] = {}
    for tenant, model in ((first, "local/echo"), (first, "gpt-5-4"), (second, "gpt-5-4")):
        if model == "gpt-5-4":
            fake.push(Scenario(recording=CHAT["openai-text.json"]))
        usage = (await _chat(gateway, tenant.key, model))["usage"]
        row = spent.setdefault((tenant.account, tenant.key_id, model), dict.fromkeys(SUMMED, 0))
        row["requests"] += 1
        row["input_tokens"] += usage["prompt_tokens"]
        row["output_tokens"] += usage["completion_tokens"]
    await _settled(gateway)
    status, text = await _export(gateway, "group_by=account,key,model,day&format=jsonl")
    assert status == 200, text
    rows = [json.loads(line) for line in text.splitlines()]
    today = day_of(time.time())
    got = {(r["account"], r["key"], r["model"]): r for r in rows}
    assert set(got) == set(spent)
    for group, want in spent.items():
        assert got[group]["day"] == today
        for name in ("requests", "input_tokens", "output_tokens"):
            assert got[group][name] == want[name], (group, name)
    assert got[("acct_exp_a", first.key_id, "gpt-5-4")]["cost_micros"] > 0  # priced
    assert got[("acct_exp_a", first.key_id, "local/echo")]["cost_usd"] == 0
    # Grouped by model alone: totals over all accounts, the same sums.
    status, text = await _export(gateway, "group_by=model&format=csv")
    assert status == 200
    table = list(csv.DictReader(io.StringIO(text)))
    by_model = {r["model"]: int(r["requests"]) for r in table}
    assert by_model == {"local/echo": 1, "gpt-5-4": 2}
    assert list(table[0])[:2] == ["model", "requests"]


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("from=2020-01-01", "from"),
        ("from=yesterday", "from"),
        ("to=2999-01-01", "to"),
        ("group_by=tenant", "group_by"),
        ("format=xml", "format"),
    ],
)
async def test_bad_export_parameters_are_400(gateway: Live, query: str, param: str) -> None:
    status, text = await _export(gateway, query)
    assert status == 400 and json.loads(text)["error"]["param"] == param, text


async def test_an_account_admin_exports_its_own_account(gateway: Live) -> None:
    mine = await gateway.tenant(account="acct_own")
    other = await gateway.tenant(account="acct_else")
    for tenant in (mine, other):
        await _chat(gateway, tenant.key, "local/echo")
    await _settled(gateway)
    status, admin = await gateway.admin(
        "POST", "/keys", {"account": "acct_own", "scopes": ["ai_gateway:admin"]}
    )
    assert status == 201
    status, text = await _export(gateway, "group_by=account", token=admin["key"])
    assert status == 200
    assert [json.loads(line)["account"] for line in text.splitlines()] == ["acct_own"]
    status, _ = await _export(gateway, "account=acct_else", token=admin["key"])
    assert status == 404


async def test_an_admin_bound_to_a_branch_exports_its_lineage_only(gateway: Live) -> None:
    """A branch admin reads the usage of its branch's keys, never a sibling branch's: not its
    keys' rows, and not their calls inside any total."""
    main = await gateway.tenant(account="acct_tree", branch="br-main")
    side = await gateway.tenant(account="acct_tree", branch="br-side")
    await _chat(gateway, main.key, "local/echo")
    for _ in range(2):
        await _chat(gateway, side.key, "local/echo")
    await _settled(gateway)
    status, admin = await gateway.admin(
        "POST",
        "/keys",
        {"account": "acct_tree", "branch": "br-main", "scopes": ["ai_gateway:admin"]},
    )
    assert status == 201, admin
    for query in ("group_by=account,key", "group_by=account", "group_by=model"):
        status, text = await _export(gateway, query + "&format=jsonl", token=admin["key"])
        assert status == 200, text
        rows = [json.loads(line) for line in text.splitlines()]
        assert sum(r["requests"] for r in rows) == 1, (query, rows)
        assert side.key_id not in text
    # The account's unbound admin still sees both branches.
    status, text = await _export(gateway, "account=acct_tree&group_by=account&format=jsonl")
    assert status == 200 and json.loads(text)["requests"] == 3, text


@pytest.fixture
async def two_prices(redis_server: RedisServer, tmp_path: Path) -> AsyncIterator[list[Live]]:
    """Two gateways on one Redis whose catalogs price the same model differently: the price
    changed between two calls."""
    redis_server.command("FLUSHALL")
    lives = []
    for n, price in enumerate((1.0, 3.0)):
        config = tmp_path / f"edge-{n}.toml"
        config.write_text(
            '[[catalog.models]]\nid = "priced-echo"\nprovider = "local"\nupstream = "echo"\n'
            f"price = {{ input = {price}, output = {price} }}\n"
        )
        env = gateway_env(redis_server.url, None, EDGE_CONFIG=str(config))
        lives.append(await start_live(settings_for(env)))
    yield lives
    for live in lives:
        await stop_live(live)


async def test_a_price_change_does_not_rewrite_history(two_prices: list[Live]) -> None:
    before, after = two_prices
    tenant = await before.tenant(account="acct_priced")
    paid = []
    for live, price in ((before, 1.0), (after, 3.0)):
        usage = (await _chat(live, tenant.key, "priced-echo"))["usage"]
        paid.append(round((usage["prompt_tokens"] + usage["completion_tokens"]) * price))
        await _settled(live)
    status, text = await _export(after, "group_by=account,model")
    assert status == 200
    (row,) = [json.loads(line) for line in text.splitlines()]
    assert row["cost_micros"] == sum(paid)  # each call as priced when it was made


def _rss_peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


async def test_a_100k_record_export_streams_in_bounded_memory(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    redis_server.command("FLUSHALL")
    accounts, keys, models, days = 50, 40, 5, 10  # 100,000 groups, one recorded call each
    now = time.time()
    expected = dict.fromkeys(SUMMED, 0)
    async with open_store(redis_server.url, redis_timeout=5.0) as store:
        n = 0
        for a in range(accounts):
            account = f"acct_{a:03d}"
            await store.identity.create_account(Account(id=account))
            batch = []
            for k in range(keys):
                for m in range(models):
                    for d in range(days):
                        n += 1
                        counts = (
                            ("requests", 1),
                            ("input_tokens", n % 97 + 1),
                            ("output_tokens", n % 31),
                            ("cost_micros", n % 1000),
                        )
                        for name, amount in counts:
                            expected[name] += amount
                        record = UsageRecord(
                            (f"account:{account}",),
                            counts,
                            day_of(now - d * 86400),
                            detail=(account, f"k{a:03d}{k:03d}\tmodel-{m}"),
                        )
                        marker = reservation_key(account, f"r{n}")
                        batch.append(store.quota.settle(marker, f"r{n}", [], [], record))
            await asyncio.gather(*batch)
    assert n == 100_000
    proc = GatewayProcess(gateway_env(redis_server.url, None)).start()
    try:
        assert proc.proc is not None
        idle = _rss_peak_kib(proc.proc.pid)
        totals = dict.fromkeys(SUMMED, 0)
        rows = size = 0
        query = "group_by=account,key,model,day&format=csv&from=" + day_of(now - 9 * 86400)
        async with (
            aiohttp.ClientSession() as http,
            http.get(
                f"{proc.url}/admin/v1/usage/export?{query}",
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            ) as resp,
        ):
            assert resp.status == 200
            header = (await resp.content.readline()).decode().strip().split(",")
            async for line in resp.content:
                size += len(line)
                values = dict(zip(header, line.decode().strip().split(","), strict=True))
                rows += 1
                for name in SUMMED:
                    totals[name] += int(values[name])
        peak = _rss_peak_kib(proc.proc.pid)
    finally:
        proc.stop()
    print(
        f"export of {rows} rows ({size / 1e6:.1f} MB of CSV): gateway peak RSS {idle / 1024:.1f} "
        f"MiB before, {peak / 1024:.1f} MiB after"
    )
    assert rows == 100_000
    assert totals == expected
    # Streamed: the gateway held one account's 2,000 groups at a time, never the table (its
    # 100,000 groups as Python tuples and dicts take about 60 MB).
    assert peak - idle < 24 * 1024


async def test_the_cli_streams_an_export_to_a_file(
    gateway: Live, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant = await gateway.tenant(account="acct_cli_export")
    for _ in range(3):
        await _chat(gateway, tenant.key, "local/echo")
    await _settled(gateway)
    out = tmp_path / "usage.csv"
    argv = ["admin", "--url", gateway.url, "--token", ADMIN_TOKEN, "usage-export"]
    argv += ["--group-by", "account,model", "--format", "csv", "--output", str(out)]
    # The CLI blocks on its HTTP calls: off this loop, which serves the gateway.
    assert await asyncio.to_thread(main, argv) == 0
    (row,) = list(csv.DictReader(io.StringIO(out.read_text())))
    assert (row["account"], row["model"], row["requests"]) == ("acct_cli_export", "local/echo", "3")
    assert "rows exported: 1" in capsys.readouterr().err
