"""Bearer JWTs: pinned algorithms, required claims, JWKS caching, and API keys taking precedence."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import AsyncIterator

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.gateway import Live, gateway_env, settings_for, start_live, stop_live
from tests.support.ports import free_port

ISSUER = "https://issuer.test"
AUDIENCE = "edge-gateway"
ECHO = {"model": "local/echo", "messages": [{"role": "user", "content": "hi"}]}


def _rsa() -> tuple[rsa.RSAPrivateKey, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return key, pem


SIGNING_KEY, PUBLIC_PEM = _rsa()
OTHER_KEY, _ = _rsa()


def claims(**over: object) -> dict[str, object]:
    now = int(time.time())
    base: dict[str, object] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "exp": now + 300,
        "iat": now,
        "account": "acct_jwt",
        "scope": "ai_gateway:invoke",
        "branch": "br-main",
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def token(
    key: object = SIGNING_KEY, alg: str = "RS256", headers: dict | None = None, **over: object
) -> str:
    return jwt.encode(claims(**over), key, algorithm=alg, headers=headers)  # type: ignore[arg-type]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(alg: str = "none") -> str:
    header = _b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    return f"{header}.{_b64(json.dumps(claims()).encode())}."


def hs256_with_public_key() -> str:
    """The algorithm-confusion attack: HMAC keyed with the issuer's public key."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(claims()).encode())
    sig = hmac.new(PUBLIC_PEM.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(sig)}"


@pytest.fixture
async def jwt_gateway(store_url, fake, tmp_path) -> AsyncIterator[Live]:
    config = tmp_path / "edge.toml"
    config.write_text(
        "[[jwt.issuers]]\n"
        f'issuer = "{ISSUER}"\naudience = "{AUDIENCE}"\nalgorithms = ["RS256"]\n'
        f"public_keys = ['''{PUBLIC_PEM}''']\nleeway = 5\n"
    )
    live = await start_live(settings_for(gateway_env(store_url, fake.url, EDGE_CONFIG=str(config))))
    await live.tenant(account="acct_jwt", branch="br-main")
    yield live
    await stop_live(live)


async def status_of(gateway: Live, headers: dict[str, str]) -> int:
    async with gateway.http.post(
        f"{gateway.url}/v1/chat/completions", json=ECHO, headers=headers
    ) as r:
        return r.status


async def test_valid_token(jwt_gateway) -> None:
    assert await status_of(jwt_gateway, {"Authorization": f"Bearer {token()}"}) == 200


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(lambda: unsigned("none"), id="alg-none"),
        pytest.param(lambda: unsigned("None"), id="alg-None"),
        pytest.param(lambda: token(aud="someone-else"), id="wrong-aud"),
        pytest.param(lambda: token(iss="https://evil.test"), id="wrong-iss"),
        pytest.param(lambda: token(exp=int(time.time()) - 60), id="expired"),
        pytest.param(lambda: token(nbf=int(time.time()) + 600), id="future-nbf"),
        pytest.param(lambda: token(exp=None), id="missing-exp"),
        pytest.param(lambda: token(aud=None), id="missing-aud"),
        pytest.param(hs256_with_public_key, id="hs256-with-rsa-public-key"),
        pytest.param(lambda: token(OTHER_KEY), id="bad-signature"),
        pytest.param(lambda: token(headers={"crit": ["exp-ext"]}), id="unknown-crit"),
        pytest.param(lambda: token(account=None), id="no-account-claim"),
        pytest.param(lambda: token()[:-5] + "AAAAA", id="tampered"),
    ],
)
async def test_rejected_tokens(jwt_gateway, bad) -> None:
    assert await status_of(jwt_gateway, {"Authorization": f"Bearer {bad()}"}) == 401


async def test_scope_and_branch_come_from_claims(jwt_gateway) -> None:
    no_scope = token(scope="something:else")
    assert await status_of(jwt_gateway, {"Authorization": f"Bearer {no_scope}"}) == 403
    other_branch = {"Authorization": f"Bearer {token()}", "X-Branch-Id": "br-elsewhere"}
    assert await status_of(jwt_gateway, other_branch) == 403


async def test_api_key_wins_over_a_jwt(jwt_gateway) -> None:
    tenant = await jwt_gateway.tenant()
    # A valid key with an invalid JWT: the key decides.
    both = {"x-api-key": tenant.key, "Authorization": f"Bearer {unsigned()}"}
    assert await status_of(jwt_gateway, both) == 200
    # An invalid key with a valid JWT: the key still decides, and fails.
    bad_key = {"x-api-key": "ek_0123456789abcdef_nope", "Authorization": f"Bearer {token()}"}
    assert await status_of(jwt_gateway, bad_key) == 401


async def test_jwks_unknown_kids_cause_one_fetch(store_url, fake, tmp_path) -> None:
    fetches: list[str] = []
    public = jwt.algorithms.RSAAlgorithm.to_jwk(SIGNING_KEY.public_key(), as_dict=True)
    public.update({"kid": "k1", "use": "sig", "alg": "RS256"})

    async def jwks(request: web.Request) -> web.Response:
        fetches.append(request.path)
        return web.json_response({"keys": [public]})

    app = web.Application()
    app.router.add_get("/jwks.json", jwks)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    config = tmp_path / "edge.toml"
    config.write_text(
        "[[jwt.issuers]]\n"
        f'issuer = "{ISSUER}"\naudience = "{AUDIENCE}"\nalgorithms = ["RS256"]\n'
        f'jwks_url = "http://127.0.0.1:{port}/jwks.json"\n'
    )
    live = await start_live(settings_for(gateway_env(store_url, fake.url, EDGE_CONFIG=str(config))))
    try:
        await live.tenant(account="acct_jwt", branch="br-main")
        good = token(headers={"kid": "k1"})
        assert await status_of(live, {"Authorization": f"Bearer {good}"}) == 200
        assert len(fetches) == 1
        for _ in range(1000):
            forged = token(headers={"kid": secrets.token_hex(8)})
            assert await status_of(live, {"Authorization": f"Bearer {forged}"}) == 401
        # The first unknown kid is inside the 30 s refetch interval of the first fetch.
        assert len(fetches) == 1
        assert await status_of(live, {"Authorization": f"Bearer {good}"}) == 200
    finally:
        await stop_live(live)
        await runner.cleanup()


async def test_a_jwt_with_the_admin_scope_administers_its_account_only(jwt_gateway) -> None:
    """Operators use their identity provider: `ai_gateway:admin` in the token's scope claim
    makes it an admin of the account its account claim names (and of nothing else)."""
    admin = token(scope="ai_gateway:admin", branch=None, sub="ops-1")
    other = await jwt_gateway.tenant(account="acct_other")
    status, keys = await jwt_gateway.admin("GET", "/keys?account=acct_jwt", token=admin)
    assert status == 200 and keys["data"], keys
    status, made = await jwt_gateway.admin(
        "POST", "/keys", {"account": "acct_jwt", "branch": "br-main"}, token=admin
    )
    assert status == 201, made
    status, _ = await jwt_gateway.admin("GET", f"/keys/{other.key_id}", token=admin)
    assert status == 404  # another account's key is unknown to it
    status, _ = await jwt_gateway.admin("POST", "/accounts", {"id": "acct_new"}, token=admin)
    assert status == 403  # creating accounts needs a global admin
    status, audit = await jwt_gateway.admin("GET", "/audit?account=acct_jwt", token=admin)
    assert status == 200
    assert any(entry["actor"] == "jwt:ops-1" for entry in audit["data"]), audit
    invoke_only = token(sub="user-2")
    status, _ = await jwt_gateway.admin("GET", "/keys?account=acct_jwt", token=invoke_only)
    assert status == 403
