"""Admin listings page by cursor over the store's indexes and filter as they read, on memory://
and redis://; the CLI follows the cursor to the end."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from edge.cli import main
from tests.support.gateway import ADMIN_TOKEN, Live


async def _pages(gateway: Live, path: str, limit: int) -> tuple[list[dict[str, Any]], int]:
    """Every record of a listing, read `limit` at a time; (records, pages read)."""
    records: list[dict[str, Any]] = []
    sep = "&" if "?" in path else "?"
    cursor, pages = None, 0
    while True:
        after = f"&after={cursor}" if cursor else ""
        status, page = await gateway.admin("GET", f"{path}{sep}limit={limit}{after}")
        assert status == 200, page
        pages += 1
        records += page["data"]
        assert page["has_more"] == (page["next_cursor"] is not None)
        cursor = page["next_cursor"]
        if cursor is None:
            return records, pages
        assert pages < 50  # bounded: a cursor that never ends fails here


async def test_accounts_and_keys_page_and_filter(gateway: Live) -> None:
    accounts = [f"acct_page_{n}" for n in range(7)]
    for account in accounts:
        assert (await gateway.admin("POST", "/accounts", {"id": account}))[0] == 201
    status, _ = await gateway.admin("POST", f"/accounts/{accounts[3]}/block", {})
    assert status == 200
    listed, pages = await _pages(gateway, "/accounts", 3)
    assert [a["id"] for a in listed] == sorted(accounts) and pages == 3
    blocked, _ = await _pages(gateway, "/accounts?status=blocked", 3)
    assert [a["id"] for a in blocked] == [accounts[3]]

    tenant = await gateway.tenant(account="acct_keys", branch="br-a")
    await gateway.admin("POST", "/accounts/acct_keys/branches", {"id": "br-b", "parent": None})
    made = [tenant.key_id]
    for n in range(5):
        body = {"account": "acct_keys", "branch": "br-b", "name": f"ci-{n % 2}"}
        status, key = await gateway.admin("POST", "/keys", body)
        assert status == 201, key
        made.append(key["id"])
    await gateway.admin("DELETE", f"/keys/{made[1]}")
    every, pages = await _pages(gateway, "/keys?account=acct_keys", 2)
    assert sorted(k["id"] for k in every) == sorted(made) and pages == 3
    assert [k["id"] for k in every] == sorted(made)  # id order: a stable cursor
    on_b, _ = await _pages(gateway, "/keys?account=acct_keys&branch=br-b&name=ci-0", 2)
    assert {k["name"] for k in on_b} == {"ci-0"} and len(on_b) == 3
    revoked, _ = await _pages(gateway, "/keys?account=acct_keys&status=revoked", 2)
    assert [k["id"] for k in revoked] == [made[1]]
    everywhere, _ = await _pages(gateway, "/keys", 4)  # all accounts: the index, not a scan
    assert set(made) <= {k["id"] for k in everywhere}


@pytest.mark.parametrize(
    ("query", "param"),
    [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=x", "limit"),
        ("after=a%20b", "after"),
        ("status=gone", "status"),
    ],
)
async def test_bad_paging_parameters_are_400(gateway: Live, query: str, param: str) -> None:
    status, body = await gateway.admin("GET", f"/keys?{query}")
    assert status == 400 and body["error"]["param"] == param, body


async def test_an_account_admin_pages_its_own_account_only(gateway: Live) -> None:
    mine = await gateway.tenant(account="acct_mine")
    await gateway.tenant(account="acct_theirs")
    status, admin = await gateway.admin(
        "POST", "/keys", {"account": "acct_mine", "scopes": ["ai_gateway:admin"]}
    )
    assert status == 201
    status, listed = await gateway.admin("GET", "/accounts?limit=1", token=admin["key"])
    assert status == 200 and [a["id"] for a in listed["data"]] == ["acct_mine"]
    assert listed["next_cursor"] is None
    status, keys = await gateway.admin("GET", "/keys?limit=1000", token=admin["key"])
    assert {k["account"] for k in keys["data"]} == {"acct_mine"}
    assert mine.key_id in {k["id"] for k in keys["data"]}


async def test_the_cli_pages_through_every_key(
    gateway: Live, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant = await gateway.tenant(account="acct_cli")
    made = {tenant.key_id}
    for _ in range(4):
        _, key = await gateway.admin("POST", "/keys", {"account": "acct_cli"})
        made.add(key["id"])
    argv = ["admin", "--url", gateway.url, "--token", ADMIN_TOKEN, "--json"]
    code = await _run([*argv, "keys", "list", "--account", "acct_cli", "--page-size", "2"])
    out = capsys.readouterr().out
    assert code == 0
    listed = json.loads(out)
    assert {k["id"] for k in listed["data"]} == made and listed["next_cursor"] is None


async def _run(argv: list[str]) -> int:
    # The CLI blocks on its HTTP calls: off this loop, which serves the gateway.
    return await asyncio.to_thread(main, argv)
