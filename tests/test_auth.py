"""Who may call: keys, scopes, branch lineage, blocked accounts and the per-key request rate."""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from tests.support.gateway import gateway_env, settings_for, start_live, stop_live

ECHO = {"model": "local/echo", "messages": [{"role": "user", "content": "hi"}]}


async def call(gateway, headers: dict[str, str], path: str = "/v1/chat/completions", **kw):
    async with gateway.http.post(f"{gateway.url}{path}", json=ECHO, headers=headers, **kw) as resp:
        return resp.status, await resp.json(), resp.headers


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_no_key(gateway) -> None:
    status, body, _ = await call(gateway, {})
    assert status == 401
    assert body["error"] == {
        "message": "Invalid authentication credentials",
        "type": "authentication_error",
        "param": None,
        "code": "invalid_api_key",
    }


@pytest.mark.parametrize(
    "key",
    [
        "nonsense",
        "ek_0123456789abcdef_wrongsecretwrongsecretwrongsecret",
        "ek_zzzz_notakey",
        "Bearer",
    ],
)
async def test_bad_keys(gateway, key: str) -> None:
    await gateway.tenant()
    status, body, _ = await call(gateway, bearer(key))
    assert status == 401 and body["error"]["code"] == "invalid_api_key"


async def test_wrong_secret_for_a_real_key_id(gateway) -> None:
    tenant = await gateway.tenant()
    forged = tenant.key[:-4] + ("AAAA" if not tenant.key.endswith("AAAA") else "BBBB")
    status, _, _ = await call(gateway, bearer(forged))
    assert status == 401


@pytest.mark.parametrize("where", ["authorization", "x-api-key", "x-goog-api-key", "query"])
async def test_every_credential_carrier(gateway, where: str) -> None:
    tenant = await gateway.tenant()
    headers = {
        "authorization": bearer(tenant.key),
        "x-api-key": {"x-api-key": tenant.key},
        "x-goog-api-key": {"x-goog-api-key": tenant.key},
        "query": {},
    }[where]
    params = {"key": tenant.key} if where == "query" else None
    status, body, _ = await call(gateway, headers, params=params)
    assert status == 200, body


async def test_revoked_key_fails_at_once(gateway) -> None:
    tenant = await gateway.tenant()
    assert (await call(gateway, bearer(tenant.key)))[0] == 200
    status, body = await gateway.admin("DELETE", f"/keys/{tenant.key_id}")
    assert status == 200 and body["revoked"] is True
    assert (await call(gateway, bearer(tenant.key)))[0] == 401


async def test_wrong_scope(gateway) -> None:
    admin_only = await gateway.tenant(scopes=["ai_gateway:admin"])
    status, body, _ = await call(gateway, bearer(admin_only.key))
    assert status == 403
    assert body["error"]["message"] == "credential lacks ai_gateway:invoke scope"
    invoker = await gateway.tenant()
    async with gateway.http.get(f"{gateway.url}/admin/v1/keys", headers=bearer(invoker.key)) as r:
        assert r.status == 403
        assert (await r.json())["error"]["message"] == "credential lacks ai_gateway:admin scope"


async def _tree(gateway, account: str) -> None:
    # br-root -> br-child -> br-grandchild, and a sibling br-other under br-root.
    for branch, parent in [
        ("br-child", "br-root"),
        ("br-grandchild", "br-child"),
        ("br-other", "br-root"),
    ]:
        status, body = await gateway.admin(
            "POST", f"/accounts/{account}/branches", {"id": branch, "parent": parent}
        )
        assert status == 201, body


async def _key_on(gateway, account: str, branch: str) -> str:
    status, body = await gateway.admin("POST", "/keys", {"account": account, "branch": branch})
    assert status == 201, body
    return body["key"]


async def test_branch_lineage(gateway) -> None:
    root = await gateway.tenant(branch="br-root")
    await _tree(gateway, root.account)
    child_key = await _key_on(gateway, root.account, "br-child")
    allowed = {"br-child", "br-grandchild"}
    for branch in ["br-root", "br-child", "br-grandchild", "br-other"]:
        status, body, _ = await call(gateway, {**bearer(child_key), "X-Branch-Id": branch})
        if branch in allowed:
            assert status == 200, (branch, body)
        else:
            assert status == 403, branch
            assert body["error"]["message"] == "branch not in credential lineage"
    # The root key reaches every branch of its own tree.
    for branch in ["br-root", "br-child", "br-grandchild", "br-other"]:
        assert (await call(gateway, {**bearer(root.key), "X-Branch-Id": branch}))[0] == 200


async def test_branch_from_host(gateway) -> None:
    root = await gateway.tenant(branch="br-root")
    await _tree(gateway, root.account)
    child_key = await _key_on(gateway, root.account, "br-child")
    host = {"Host": "br-grandchild-api.c2.example.tech"}
    assert (await call(gateway, {**bearer(child_key), **host}))[0] == 200
    host = {"Host": "br-other-api.c2.example.tech"}
    assert (await call(gateway, {**bearer(child_key), **host}))[0] == 403


async def test_unknown_and_foreign_branches_look_alike(gateway) -> None:
    mine = await gateway.tenant(branch="br-root")
    theirs = await gateway.tenant(branch="br-secret")
    unknown = await call(gateway, {**bearer(mine.key), "X-Branch-Id": "br-does-not-exist"})
    foreign = await call(gateway, {**bearer(mine.key), "X-Branch-Id": theirs.branch})
    assert unknown[0] == foreign[0] == 403
    assert unknown[1] == foreign[1]


async def test_blocked_account(gateway) -> None:
    tenant = await gateway.tenant()
    status, _ = await gateway.admin(
        "POST", f"/accounts/{tenant.account}/block", {"reason": "unpaid"}
    )
    assert status == 200
    status, body, headers = await call(gateway, bearer(tenant.key))
    assert status == 429
    assert body["error"]["code"] == "REQUEST_LIMIT_EXCEEDED"
    assert body["error"]["type"] == "rate_limit_error"
    assert "Retry-After" in headers
    assert (await gateway.admin("POST", f"/accounts/{tenant.account}/unblock"))[0] == 200
    assert (await call(gateway, bearer(tenant.key)))[0] == 200


async def test_requests_per_minute_with_exact_retry_after(gateway) -> None:
    tenant = await gateway.tenant(quota={"requests_per_minute": 3})
    first = time.time()
    for remaining in (2, 1, 0):
        status, _, headers = await call(gateway, bearer(tenant.key))
        assert status == 200
        assert headers["RateLimit"].split(";")[1] == f"r={remaining}"
        assert "q=3" in headers["RateLimit-Policy"] and "w=60" in headers["RateLimit-Policy"]
    status, body, headers = await call(gateway, bearer(tenant.key))
    denied_at = time.time()
    assert status == 429
    assert body["error"]["code"] == "REQUEST_LIMIT_EXCEEDED"
    assert "requests per minute" in body["error"]["message"]
    retry = int(headers["Retry-After"])
    # The first hit leaves the moving window 60 s after it was made.
    assert math.ceil(first + 60 - denied_at) - 1 <= retry <= math.ceil(first + 60 - denied_at) + 1


async def test_admin_bootstrap_token_cannot_invoke(gateway) -> None:
    from tests.support.gateway import ADMIN_TOKEN

    status, _, _ = await call(gateway, bearer(ADMIN_TOKEN))
    assert status == 403


async def test_revocation_reaches_another_replica(redis_server, fake) -> None:
    redis_server.command("FLUSHALL")
    env = gateway_env(redis_server.url, fake.url)
    one, two = await start_live(settings_for(env)), await start_live(settings_for(env))
    try:
        tenant = await one.tenant()
        assert (await call(two, bearer(tenant.key)))[0] == 200  # now cached on replica two
        assert (await one.admin("DELETE", f"/keys/{tenant.key_id}"))[0] == 200
        revoked_at = time.monotonic()
        while (await call(two, bearer(tenant.key)))[0] != 401:
            assert time.monotonic() - revoked_at < 1.0, "revocation not seen within 1 s"
            await asyncio.sleep(0.01)
    finally:
        await stop_live(one)
        await stop_live(two)
