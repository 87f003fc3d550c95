"""A provider that echoes the gateway's own credential never gets it to a client, whatever the
credential's format: the configured secret values themselves are scrubbed (a Databricks
`dapi...` token matched none of the scrubber's patterns and was relayed as the provider sent
it), on the relayed and the translated path, in every field, in a masked echo, in a rate-limit
header and in a background run's stored error."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest

from edge.upstream.errors import CONFIGURED_SECRETS, relayable, scrub, upstream_error
from tests.support.clock import Deadline
from tests.support.fake_upstream import FakeUpstream, Scenario
from tests.support.gateway import Live, gateway_env, settings_for, start_live, stop_live

# A Databricks personal access token's shape: no pattern of the scrubber's knows it.
TOKEN = "dapi0123456789abcdef0123456789abcdef"
MODEL = "databricks-qwen35-122b-a10b"
CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"


@pytest.fixture
async def live(store_url: str, fake: FakeUpstream) -> AsyncIterator[Live]:
    """A gateway whose Databricks provider (the fake) holds TOKEN."""
    gateway = await start_live(
        settings_for(gateway_env(store_url, fake.url, DATABRICKS_TOKEN=TOKEN))
    )
    yield gateway
    await stop_live(gateway)


def echoing(message: str, status: int = 400, **extra: str) -> Scenario:
    """An OpenAI-style error from the provider, its message (and any extra field) as given."""
    body = {"error": {"message": message, "type": "invalid_request_error", **extra}}
    return Scenario(status=status, body=orjson.dumps(body), content_type="application/json")


async def call(live: Live, key: str, path: str) -> tuple[int, bytes, dict[str, str]]:
    assert live.http is not None
    body: dict[str, object] = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    if path == MESSAGES:
        body["max_tokens"] = 16
    async with live.http.post(
        f"{live.url}{path}", json=body, headers={"Authorization": f"Bearer {key}"}
    ) as resp:
        return resp.status, await resp.read(), dict(resp.headers)


@pytest.mark.parametrize("path", [CHAT, MESSAGES])
@pytest.mark.parametrize(
    "scenario",
    [
        pytest.param(echoing(f"Invalid access token {TOKEN}."), id="in-the-message"),
        pytest.param(echoing("Invalid access token.", param=TOKEN), id="in-the-param"),
        pytest.param(echoing("Bad token.", code=f"token:{TOKEN}"), id="in-the-code"),
        pytest.param(echoing(f"Invalid token {TOKEN[:14]}...{TOKEN[-4:]}"), id="masked"),
        pytest.param(echoing(f"Rejected {TOKEN}", status=422), id="a-422"),
        pytest.param(echoing(f"Unknown model for {TOKEN}", status=404), id="a-404"),
    ],
)
async def test_an_echoed_provider_token_never_reaches_the_client(
    live: Live, fake: FakeUpstream, path: str, scenario: Scenario
) -> None:
    tenant = await live.tenant()
    fake.push(scenario)
    status, body, _ = await call(live, tenant.key, path)
    assert fake.requests and fake.requests[-1].headers.get("Authorization") == f"Bearer {TOKEN}"
    assert status == scenario.status, body
    assert TOKEN[:12].encode() not in body, body
    assert b"error" in body  # still an error in the caller's shape, with what was safe to say


async def test_a_clean_provider_error_still_passes_as_it_was_sent(
    live: Live, fake: FakeUpstream
) -> None:
    """The scrubbing takes nothing it need not: an error without the token is relayed exact."""
    tenant = await live.tenant()
    scenario = echoing("max_tokens is too large: 99999999.", param="max_tokens")
    fake.push(scenario)
    status, body, _ = await call(live, tenant.key, CHAT)
    assert (status, body) == (400, scenario.body)


async def test_a_rate_limit_header_echoing_the_token_is_not_forwarded(
    live: Live, fake: FakeUpstream
) -> None:
    tenant = await live.tenant()
    fake.push(
        Scenario(
            status=429,
            body=b'{"error":{"message":"slow down","type":"rate_limit_error"}}',
            content_type="application/json",
            headers={"x-ratelimit-limit-requests": "60", "x-ratelimit-key": TOKEN},
        )
    )
    status, body, headers = await call(live, tenant.key, CHAT)
    assert status == 429
    assert headers.get("x-ratelimit-limit-requests") == "60"
    assert "x-ratelimit-key" not in {k.lower() for k in headers}
    assert TOKEN.encode() not in body and all(TOKEN not in v for v in headers.values())


async def test_a_background_run_stores_no_echoed_token(live: Live, fake: FakeUpstream) -> None:
    """Background runs start from the gateway's start-up, not a connection: the same scrubbing."""
    assert live.http is not None
    tenant = await live.tenant()
    fake.push(echoing(f"Invalid access token {TOKEN}.", status=422))
    auth = {"Authorization": f"Bearer {tenant.key}"}
    async with live.http.post(
        f"{live.url}/v1/responses",
        json={"model": MODEL, "input": "hi", "background": True},
        headers=auth,
    ) as resp:
        assert resp.status == 200, await resp.text()
        queued = await resp.json()
    deadline = Deadline(20)
    while True:
        async with live.http.get(f"{live.url}/v1/responses/{queued['id']}", headers=auth) as resp:
            raw = await resp.read()
        stored = orjson.loads(raw)
        if stored["status"] not in ("queued", "in_progress"):
            break
        deadline.check(f"the background run is still {stored['status']}")
        await asyncio.sleep(0.05)
    assert fake.requests, "the provider was never called"
    assert stored["status"] == "failed", stored
    assert TOKEN[:12].encode() not in raw, raw
    async with live.http.get(
        f"{live.url}/v1/responses/{queued['id']}?stream=true", headers=auth
    ) as resp:
        assert TOKEN[:12].encode() not in await resp.read()


def test_the_scrubber_removes_the_configured_values_whatever_their_format() -> None:
    """The unit: what the context holds is removed whole, or from its first 12 characters on
    to the end of the word; nothing else is touched."""
    secrets = ("Zq9-very.odd+secret/value==", TOKEN)
    raw = orjson.dumps({"error": {"message": "fine", "details": f"k={TOKEN}"}})
    assert relayable(400, raw)  # with nothing configured, the scrubber knows no such value
    token = CONFIGURED_SECRETS.set(secrets)
    try:
        assert scrub(f"bad key Zq9-very.odd+secret/value== and {TOKEN}") == (
            "bad key [redacted] and [redacted]"
        )
        assert scrub(f"bad key '{TOKEN[:13]}****wxyz', try again") == (
            "bad key '[redacted]', try again"
        )
        assert scrub("an ordinary message, dapi mentioned") == "an ordinary message, dapi mentioned"
        assert not relayable(400, raw)  # a secret in any field keeps the body from passing
        escaped = raw.replace(b"dapi0", b"dapi\\u0030")  # the same JSON, escaped otherwise
        assert TOKEN.encode() not in escaped and not relayable(400, escaped)
        err = upstream_error(400, raw, [])
        assert TOKEN not in err.message and err.param is None
    finally:
        CONFIGURED_SECRETS.reset(token)
