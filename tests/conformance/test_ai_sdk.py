"""The Vercel AI SDK (pinned in js/package-lock.json, run with node) against a live gateway.

Every provider package of the SDK (`openai` on the Responses API, `openai.chat`, `anthropic`,
`google`, `openai-compatible`) calls an OpenAI, an Anthropic and a Gemini model (answered by
the fake provider) and `local/echo`: text, a text stream, a tool round trip whole and
streamed, and structured output (`Output.object` and `generateObject`); `openai(model)` also
holds a three-turn chat, where the SDK sends earlier assistant turns as item references.
node runs once for each store (memory://, redis://); each case is then one test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import pytest_asyncio

from tests.conformance.conftest import run_node
from tests.conformance.provider import Provider, transcript
from tests.support.fake_upstream import Seen
from tests.support.gateway import gateway_env, settings_for, start_live, stop_live
from tests.support.redis_server import RedisServer

# Each model, and the provider API the fake hears it in for each SDK provider (None: no
# provider is called). OpenAI serves Chat Completions clients over Chat Completions.
MODELS: dict[str, dict[str, str | None]] = {
    "gpt-5-4": {"openai-chat": "chat", "openai-compatible": "chat", "*": "responses"},
    "claude-sonnet-4-6": {"*": "messages"},
    "gemini-2-5-flash": {"*": "gemini"},
    "local/echo": {"*": None},
}
PROVIDERS = ("openai", "openai-chat", "anthropic", "google", "openai-compatible")
SCENARIOS = ("text", "stream", "tools", "stream-tools", "output", "object")
PATHS = {
    "responses": "/v1/responses",
    "chat": "/v1/chat/completions",
    "messages": "/v1/messages",
    "gemini": "/v1beta/models/gemini-2.5-flash:",
}


@dataclass(frozen=True)
class Case:
    """One SDK call: a scenario, through an SDK provider, on a model."""

    n: int
    model: str
    provider: str
    scenario: str

    @property
    def id(self) -> str:
        """The test id."""
        return f"{self.scenario}-{self.provider}-{self.model}"

    @property
    def prompt(self) -> str:
        """The user's text: a marker no other case's text contains."""
        return f"Paris case{self.n:03d}x"

    @property
    def api(self) -> str | None:
        """The provider API the fake hears this case in."""
        routes = MODELS[self.model]
        return routes.get(self.provider, routes["*"])


CASES = [
    Case(0, model, provider, scenario)
    for model in MODELS
    for provider in PROVIDERS
    for scenario in SCENARIOS
] + [Case(0, model, "openai", "chat") for model in MODELS]
CASES = [Case(n, c.model, c.provider, c.scenario) for n, c in enumerate(CASES)]


@dataclass
class Run:
    """What the SDK returned for each case, and what reached the fake provider."""

    results: dict[str, dict[str, Any]]
    requests: list[Seen]

    def seen(self, case: Case) -> list[Seen]:
        """The provider requests of one case, in order."""
        marker = case.prompt.encode()
        return [r for r in self.requests if marker in r.raw]


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["memory", "redis"])
async def run(request: pytest.FixtureRequest, node: Path) -> AsyncIterator[Run]:
    """Every case, run once by one node process against one gateway, on each store."""
    store = "memory://"
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        server.command("FLUSHALL")
        store = server.url
    provider = await Provider().start()
    live = await start_live(settings_for(gateway_env(store, provider.url)))
    try:
        tenant = await live.tenant()
        payload = {
            "gateway": live.url,
            "key": tenant.key,
            "cases": [
                {
                    "id": c.id,
                    "model": c.model,
                    "provider": c.provider,
                    "scenario": c.scenario,
                    "prompt": c.prompt,
                }
                for c in CASES
            ],
        }
        out = await run_node(node, "driver.mjs", payload)
        yield Run({r["id"]: r for r in out}, list(provider.requests))
    finally:
        await stop_live(live)
        await provider.stop()


def _result(run: Run, case: Case) -> dict[str, Any]:
    result = run.results[case.id]
    assert result["ok"], result["error"]
    return result


def _expected_text(case: Case) -> str:
    return f"Echo: {case.prompt}" if case.api is None else f"{case.api} says: {case.prompt}"


def _check_upstream(run: Run, case: Case, calls: int) -> list[Seen]:
    """The case reached the provider in its API, `calls` times (never, for local/echo)."""
    seen = run.seen(case)
    if case.api is None:
        assert seen == []
        return seen
    assert len(seen) == calls, [s.path for s in seen]
    for s in seen:
        assert s.path.startswith(PATHS[case.api]), s.path
    return seen


def _single(run: Run, case: Case) -> Seen | None:
    """The one provider request of a case (None for local/echo)."""
    seen = _check_upstream(run, case, 1)
    return seen[0] if seen else None


def _streamed(s: Seen) -> bool:
    return ":streamGenerateContent" in s.path or bool(s.body.get("stream"))


def _cases(*scenarios: str) -> pytest.MarkDecorator:
    chosen = [c for c in CASES if c.scenario in scenarios]
    return pytest.mark.parametrize("case", chosen, ids=[c.id for c in chosen])


@_cases("text")
def test_generate_text(run: Run, case: Case) -> None:
    result = _result(run, case)
    assert result["text"] == _expected_text(case)
    assert result["finishReason"] == "stop"
    assert result["usage"]["outputTokens"] > 0
    seen = _single(run, case)
    assert seen is None or not _streamed(seen)


@_cases("stream")
def test_stream_text(run: Run, case: Case) -> None:
    result = _result(run, case)
    assert result["text"] == result["joined"] == _expected_text(case)
    assert result["pieces"] >= 2  # it arrived as a stream, not in one piece
    assert result["finishReason"] == "stop"
    assert result["usage"]["outputTokens"] > 0
    seen = _single(run, case)
    assert seen is None or _streamed(seen)


@_cases("tools", "stream-tools")
def test_a_tool_round_trip(run: Run, case: Case) -> None:
    result = _result(run, case)
    assert result["calls"] == [{"name": "weather", "input": {"location": case.prompt}}]
    forecast = f"sunny in {case.prompt}"
    assert result["results"] == [{"name": "weather", "output": {"forecast": forecast}}]
    assert result["steps"] == 2
    assert forecast in result["text"]
    if case.scenario == "stream-tools":
        assert result["joined"] == result["text"]
    seen = _check_upstream(run, case, 2)
    if seen:
        first, second = seen
        assert b'"weather"' in first.raw and forecast.encode() not in first.raw
        assert forecast.encode() in second.raw  # the tool's result went back to the model
        assert all(_streamed(s) == (case.scenario == "stream-tools") for s in seen)


@_cases("output", "object")
def test_structured_output(run: Run, case: Case) -> None:
    result = _result(run, case)
    obj = result["object"]
    assert obj["city"] == case.prompt
    assert isinstance(obj["days"], int)
    seen = _single(run, case)
    # The schema reached the provider (as a response format, or a tool the answer must call).
    assert seen is None or b'"days"' in seen.raw


@_cases("chat")
def test_a_three_turn_chat_by_item_reference(run: Run, case: Case) -> None:
    turns = _result(run, case)["turns"]
    answers = [f"{_expected_text(case)} turn {n}" for n in (1, 2, 3)]
    assert [t["text"] for t in turns] == answers
    # The SDK referred to its earlier assistant turns by id, as useChat does: one reference or
    # more for each (a reasoning model's answer has a reasoning item as well as a message).
    sent = [t["sent"] if isinstance(t["sent"], dict) else orjson.loads(t["sent"]) for t in turns]
    refs = [[i["id"] for i in s["input"] if i.get("type") == "item_reference"] for s in sent]
    assert refs[0] == [] and refs[1] and refs[2][: len(refs[1])] == refs[1], refs
    assert len(refs[2]) == 2 * len(refs[1]) == len(set(refs[2])), refs
    seen = _check_upstream(run, case, 3)
    if seen:
        # The provider got the turns themselves, in order, never a reference.
        assert b"item_reference" not in seen[-1].raw
        questions = [f"{case.prompt} turn {n}" for n in (1, 2, 3)]
        assert transcript(seen[-1].path, seen[-1].body) == [
            ("user", questions[0]),
            ("assistant", answers[0]),
            ("user", questions[1]),
            ("assistant", answers[1]),
            ("user", questions[2]),
        ]
