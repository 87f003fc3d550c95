"""The admin API: quotas and plans, validation naming fields, idempotent PUT, rotation with a
grace period, leaf-branch deletion, the audit log, and account scoping (memory and redis)."""

from __future__ import annotations

import time

from tests.support.clock import Deadline
from tests.support.gateway import Live
from tests.test_quota_support import chat


async def _account_admin(gateway: Live, account: str) -> str:
    status, key = await gateway.admin(
        "POST", "/keys", {"account": account, "scopes": ["ai_gateway:admin"]}
    )
    assert status == 201
    return str(key["key"])


async def test_quota_put_get_delete_is_idempotent(gateway: Live) -> None:
    tenant = await gateway.tenant()
    path = f"/keys/{tenant.key_id}/quota"
    quota = {"requests_per_minute": 10, "cost_per_month_usd": 12.5, "strategy": "moving-window"}
    first = await gateway.admin("PUT", path, quota)
    second = await gateway.admin("PUT", path, quota)
    assert first == second and first[0] == 200
    assert first[1]["overrides"] == quota
    assert (await gateway.admin("GET", path))[1] == first[1]
    status, cleared = await gateway.admin("DELETE", path)
    assert status == 200 and cleared["overrides"] == {} and cleared["effective"] == {}


async def test_account_quota_sits_on_top_of_the_plan(gateway: Live) -> None:
    tenant = await gateway.tenant()
    path = f"/accounts/{tenant.account}"
    status, view = await gateway.admin("PUT", f"{path}/plan", {"plan": "free"})
    assert status == 200 and view["effective"]["requests_per_minute"] == 20
    status, view = await gateway.admin(
        "PUT", f"{path}/quota", {"requests_per_minute": 50, "requests_per_day": None}
    )
    assert status == 200
    assert view["effective"]["requests_per_minute"] == 50
    assert "requests_per_day" not in view["effective"]
    status, usage = await gateway.admin("GET", f"{path}/usage")
    assert status == 200
    names = {row["name"] for row in usage["limits"]}
    assert {"requests_per_minute", "tokens_per_minute", "cost_per_month_usd"} <= names
    assert len(usage["days"]) == 30


async def test_validation_names_the_field(gateway: Live) -> None:
    tenant = await gateway.tenant()
    cases = [
        (f"/keys/{tenant.key_id}/quota", {"requests_per_minute": -1}, "requests_per_minute"),
        (f"/keys/{tenant.key_id}/quota", {"tokens_per_fortnight": 1}, "tokens_per_fortnight"),
        (f"/accounts/{tenant.account}/plan", {"plan": "gold"}, "plan"),
        (f"/keys/{tenant.key_id}/plan", {"plan": 3}, "plan"),
    ]
    for path, body, field in cases:
        status, answer = await gateway.admin("PUT", path, body)
        assert status == 400, (path, answer)
        assert answer["error"]["param"] == field
        assert f"'{field}'" in answer["error"]["message"]


async def test_usage_rebaselines_when_a_limit_is_raised(gateway: Live) -> None:
    tenant = await gateway.tenant(quota={"requests_per_minute": 2})
    assert gateway.http is not None
    for _ in range(2):
        assert (await chat(gateway.http, gateway.url, tenant.key))[0] == 200
    path = f"/keys/{tenant.key_id}/usage"
    row = next(r for r in (await gateway.admin("GET", path))[1]["limits"])
    assert (row["used"], row["remaining"]) == (2, 0)
    await gateway.admin("PUT", f"/keys/{tenant.key_id}/quota", {"requests_per_minute": 10})
    row = next(r for r in (await gateway.admin("GET", path))[1]["limits"])
    assert (row["limit"], row["used"], row["remaining"]) == (10, 2, 8)


async def test_rotation_keeps_the_old_secret_for_the_grace_period(gateway: Live) -> None:
    tenant = await gateway.tenant()
    assert gateway.http is not None
    status, rotated = await gateway.admin(
        "POST", f"/keys/{tenant.key_id}/rotate", {"grace_seconds": 1}
    )
    assert status == 200 and rotated["key"] != tenant.key
    assert "hash" not in rotated and "previous_hash" not in rotated
    assert (await chat(gateway.http, gateway.url, rotated["key"]))[0] == 200
    assert (await chat(gateway.http, gateway.url, tenant.key))[0] == 200
    deadline = Deadline(10)
    while (await chat(gateway.http, gateway.url, tenant.key))[0] != 401:
        deadline.check("the old secret outlived its grace period")
    status, _ = await gateway.admin("POST", f"/keys/{tenant.key_id}/rotate", {"grace_seconds": -1})
    assert status == 400


async def test_only_leaf_branches_can_be_deleted(gateway: Live) -> None:
    tenant = await gateway.tenant()
    base = f"/accounts/{tenant.account}/branches"
    assert (await gateway.admin("POST", base, {"id": "br-child", "parent": tenant.branch}))[
        0
    ] == 201
    status, answer = await gateway.admin("DELETE", f"{base}/{tenant.branch}")
    assert status == 409 and "br-child" in answer["error"]["message"]
    assert (await gateway.admin("DELETE", f"{base}/br-child"))[0] == 200
    assert (await gateway.admin("DELETE", f"{base}/br-child"))[0] == 404


async def test_account_admin_sees_only_its_account(gateway: Live) -> None:
    mine = await gateway.tenant()
    other = await gateway.tenant()
    token = await _account_admin(gateway, mine.account)
    assert (await gateway.admin("GET", f"/keys/{mine.key_id}/quota", token=token))[0] == 200
    for method, path, body in [
        ("GET", f"/keys/{other.key_id}/quota", None),
        ("PUT", f"/keys/{other.key_id}/quota", {"requests_per_minute": 1}),
        ("GET", f"/keys/{other.key_id}/usage", None),
        ("POST", f"/keys/{other.key_id}/rotate", None),
        ("GET", f"/accounts/{other.account}/usage", None),
        ("GET", f"/audit?account={other.account}", None),
    ]:
        status, _ = await gateway.admin(method, path, body, token=token)
        assert status == 404, (method, path)
    # Limits that bound the whole account, and blocks, are the operator's.
    path = f"/accounts/{mine.account}"
    assert (await gateway.admin("PUT", f"{path}/quota", {}, token=token))[0] == 403
    assert (await gateway.admin("POST", f"{path}/unblock", None, token=token))[0] == 403
    status, listed = await gateway.admin("GET", "/accounts", token=token)
    assert [a["id"] for a in listed["data"]] == [mine.account]


async def test_audit_log_records_who_what_when(gateway: Live) -> None:
    tenant = await gateway.tenant()
    token = await _account_admin(gateway, tenant.account)
    started = time.time()
    await gateway.admin(
        "PUT", f"/keys/{tenant.key_id}/quota", {"requests_per_minute": 7}, token=token
    )
    await gateway.admin("DELETE", f"/keys/{tenant.key_id}")
    status, log = await gateway.admin("GET", f"/audit?account={tenant.account}&limit=2")
    assert status == 200
    newest, older = log["data"]
    assert (newest["action"], newest["actor"]) == ("key.revoke", "bootstrap")
    assert older["action"] == "key.quota.put"
    assert older["actor"].startswith("key:") and older["actor_account"] == tenant.account
    assert older["details"] == {"quota": {"requests_per_minute": 7}}
    assert newest["at"] >= older["at"] >= started - 1
    status, page = await gateway.admin(
        "GET", f"/audit?account={tenant.account}&before={log['next_before']}"
    )
    assert status == 200 and all(e["id"] < older["id"] or "-" in e["id"] for e in page["data"])
    assert (await gateway.admin("GET", "/audit?before=x"))[0] == 400


async def test_openapi_document_is_public_and_lists_every_route(gateway: Live) -> None:
    assert gateway.http is not None
    async with gateway.http.get(f"{gateway.url}/admin/v1/openapi.json") as resp:
        assert resp.status == 200
        doc = await resp.json()
    assert doc["openapi"] == "3.1.0"
    assert gateway.app is not None
    routes = {
        (r.method.lower(), r.resource.canonical.removeprefix("/admin/v1"))
        for r in gateway.app.router.routes()
        if r.resource is not None
        and r.resource.canonical.startswith("/admin/v1/")
        and r.method != "HEAD"
    }
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops if m != "parameters"}
    assert routes - {("get", "/openapi.json")} == documented
