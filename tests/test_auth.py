"""Who may call: keys, scopes, branch lineage, blocked accounts and the per-key request rate."""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request

from policies.credentials import hash_key
from tests.support.clock import Stopwatch, wait_until
from tests.support.gateway import ADMIN_TOKEN, gateway_env, settings_for, start_live, stop_live

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


@pytest.mark.parametrize("where", ["authorization", "x-api-key", "x-goog-api-key"])
async def test_every_credential_carrier(gateway, where: str) -> None:
    tenant = await gateway.tenant()
    headers = {
        "authorization": bearer(tenant.key),
        "x-api-key": {"x-api-key": tenant.key},
        "x-goog-api-key": {"x-goog-api-key": tenant.key},
    }[where]
    status, body, _ = await call(gateway, headers)
    assert status == 200, body


GEMINI_CALL = "/v1beta/models/local/echo:generateContent"
GEMINI_BODY = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


async def test_a_key_in_the_url_only_on_gemini_routes_and_only_an_invoke_key(gateway) -> None:
    # Google's SDK may put its key in `?key=`; nowhere else does a credential belong in a URL,
    # where proxies and access logs keep it.
    tenant = await gateway.tenant()
    async with gateway.http.post(
        f"{gateway.url}{GEMINI_CALL}", json=GEMINI_BODY, params={"key": tenant.key}
    ) as resp:
        assert resp.status == 200, await resp.text()
    async with gateway.http.get(f"{gateway.url}/v1beta/models", params={"key": tenant.key}) as resp:
        assert resp.status == 200, await resp.text()
    status, body, _ = await call(gateway, {}, params={"key": tenant.key})
    assert status == 401, body
    admin = await gateway.tenant(scopes=["ai_gateway:admin"])
    for token in (ADMIN_TOKEN, admin.key):
        async with gateway.http.get(
            f"{gateway.url}/admin/v1/accounts", params={"key": token}
        ) as resp:
            assert resp.status == 401, await resp.text()
    # The bootstrap admin token is never read from a URL, not even on a Gemini route.
    async with gateway.http.post(
        f"{gateway.url}{GEMINI_CALL}", json=GEMINI_BODY, params={"key": ADMIN_TOKEN}
    ) as resp:
        assert resp.status == 401


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
    """Replica two drops its cached key when replica one publishes the revocation (the
    invalidation channel, not the cache's expiry): its next call is refused. How soon is a
    figure here; tests/soak/test_durations_soak.py holds it to a second."""
    from edge.appkeys import STORE

    redis_server.command("FLUSHALL")
    env = gateway_env(redis_server.url, fake.url)
    one, two = await start_live(settings_for(env)), await start_live(settings_for(env))
    try:
        heard: list[str] = []
        two.app[STORE].invalidation.subscribe(heard.append)
        tenant = await one.tenant()
        assert (await call(two, bearer(tenant.key)))[0] == 200  # now cached on replica two
        revoked = Stopwatch()
        assert (await one.admin("DELETE", f"/keys/{tenant.key_id}"))[0] == 200
        await wait_until(lambda: f"key:{tenant.key_id}" in heard, "replica two told of it")
        assert (await call(two, bearer(tenant.key)))[0] == 401
        print(f"revocation enforced by replica two after {revoked.elapsed() * 1000:.0f} ms")
    finally:
        await stop_live(one)
        await stop_live(two)


class KeyChecks:
    """Every HMAC and constant-time compare the process makes while it is installed: the
    instruments of `hmac.new` and `hmac.compare_digest`, which the key check calls through
    the `hmac` module (policies.credentials.hash_key, edge.auth.authenticate)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[Any, ...]] = []
        real_new, real_compare = hmac.new, hmac.compare_digest

        def new(key: bytes, msg: bytes | None = None, digestmod: Any = None) -> hmac.HMAC:
            self.calls.append(("hmac", key, msg, digestmod))
            return real_new(key, msg, digestmod)

        def compare(a: Any, b: Any) -> bool:
            self.calls.append(("compare", a, b))
            return real_compare(a, b)

        monkeypatch.setattr(hmac, "new", new)
        monkeypatch.setattr(hmac, "compare_digest", compare)

    @staticmethod
    def shape(calls: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """What the work costs, without what it is about: each call's kind, argument types
        and lengths, and digest."""
        out: list[tuple[Any, ...]] = []
        for kind, *args in calls:
            if kind == "hmac":
                key, msg, digestmod = args
                out.append((kind, len(key), len(msg), digestmod))
            else:
                out.append((kind, *((type(a), len(a)) for a in args)))
        return out


def _same_length_secret(key: str) -> str:
    """A wrong secret for the key's id, as long as the right one."""
    prefix, key_id, secret = key.split("_", 2)
    wrong = secrets.token_urlsafe(64)[: len(secret)]
    assert wrong != secret
    return f"{prefix}_{key_id}_{wrong}"


async def test_a_wrong_key_and_an_unknown_key_do_the_same_work(gateway, monkeypatch) -> None:
    """A wrong secret for a real key id, and an unknown key id, run the same path: one HMAC of
    the presented key under the server secret, then two constant-time compares of it with
    hashes as long as real ones (a dummy where the id has no such hash), and the same number
    of store reads. Shown by instrumenting the calls, not by the clock (the timings are
    printed by tests/soak/test_durations_soak.py). Revoked keys and rotated keys (in their
    grace period or past it) are checked alike; so is a right key, which is accepted after
    exactly the same work."""
    from edge.appkeys import AUTHENTICATOR, IDENTITY, STORE
    from edge.auth.authenticate import _DUMMY_HASH
    from edge.errors import GatewayError
    from tests.support.gateway import HMAC_SECRET

    plain = await gateway.tenant()
    revoked = await gateway.tenant()
    assert (await gateway.admin("DELETE", f"/keys/{revoked.key_id}"))[0] == 200
    in_grace = await gateway.tenant()
    status, rotated = await gateway.admin("POST", f"/keys/{in_grace.key_id}/rotate")
    assert status == 200
    expired = await gateway.tenant()
    status, rotated_expired = await gateway.admin("POST", f"/keys/{expired.key_id}/rotate")
    assert status == 200
    store = gateway.app[STORE]
    record = await store.identity.get_key(expired.key_id)
    record.previous_valid_until = time.time() - 1  # its grace is over
    await store.identity.put_key(record)
    stored = {
        t.key_id: await store.identity.get_key(t.key_id)
        for t in (plain, revoked, in_grace, expired)
    }
    unknown_id = secrets.token_hex(8)
    assert unknown_id not in stored
    cases = {
        "wrong secret, plain key": (_same_length_secret(plain.key), plain.key_id, False),
        "wrong secret, rotated key": (_same_length_secret(rotated["key"]), in_grace.key_id, False),
        "wrong secret, grace over": (
            _same_length_secret(rotated_expired["key"]),
            expired.key_id,
            False,
        ),
        "old secret, grace over": (expired.key, expired.key_id, False),
        "revoked key": (revoked.key, revoked.key_id, False),
        "unknown id": (
            _same_length_secret(f"ek_{unknown_id}_{plain.key.split('_', 2)[2]}"),
            None,
            False,
        ),
        "right key": (plain.key, plain.key_id, True),
        "old secret, in grace": (in_grace.key, in_grace.key_id, True),
    }
    assert len({len(token) for token, _, _ in cases.values()}) == 1  # the same bytes to hash

    authenticator, identity = gateway.app[AUTHENTICATOR], gateway.app[IDENTITY]
    reads: list[str] = []
    real_get_key = store.identity.get_key

    async def counted_get_key(key_id: str):
        reads.append(key_id)
        return await real_get_key(key_id)

    monkeypatch.setattr(store.identity, "get_key", counted_get_key)
    checks = KeyChecks(monkeypatch)

    async def attempt(token: str) -> tuple[bool, list[tuple[Any, ...]], int]:
        checks.calls.clear()
        reads.clear()
        request = make_mocked_request("GET", "/v1/models", headers=bearer(token))
        try:
            await authenticator.authenticate(request)
            accepted = True
        except GatewayError as exc:
            assert exc.status == 401
            accepted = False
        return accepted, list(checks.calls), len(reads)

    shapes: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
    for phase in ("cold", "warm"):
        for name, (token, key_id, valid) in cases.items():
            if phase == "cold":
                identity.invalidate("*")  # the store answers
            else:
                await attempt(token)  # now the identity cache answers
            accepted, calls, store_reads = await attempt(token)
            assert accepted is valid, (phase, name)
            assert store_reads == (1 if phase == "cold" else 0), (phase, name)
            presented = hash_key(HMAC_SECRET.encode(), token)
            record = stored.get(key_id or "")
            live = record is not None and not record.revoked
            current = record.hash if live else _DUMMY_HASH
            previous = record.previous_hash if live and record.previous_hash else _DUMMY_HASH
            assert calls == [
                ("hmac", HMAC_SECRET.encode(), token.encode(), hashlib.sha256),
                ("compare", presented, current),
                ("compare", presented, previous),
            ], (phase, name, calls)
            shapes[phase, name] = KeyChecks.shape(calls)
    # The same work whatever the id names: unknown, wrong, revoked, rotated or right.
    assert len({repr(s) for s in shapes.values()}) == 1, shapes
    # The dummy costs what a real hash costs: the same type and length.
    assert type(_DUMMY_HASH) is type(stored[plain.key_id].hash)
    assert len(_DUMMY_HASH) == len(stored[plain.key_id].hash)
