"""Calling each client API the same way and reading any answer back into one comparable shape.

`call()` sends a prompt (with optional tools) to a client API, stream or not, and returns an
`Outcome`: the status, headers, and the answer's text, tool calls, reasoning and usage as the
client would assemble them. Each reader also checks that the stream is a valid stream of its
API (event order, block indexes, the final marker), so a translation that produces text but
breaks the protocol fails here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from edge.translate.adapters import ADAPTERS
from tests.support.gateway import Live
from tests.support.readers import READERS, Answer, read_gemini_array

CLIENT_APIS = ("chat", "messages", "gemini", "responses")
# A catalog model per provider API (default catalog; providers point at the fake upstream).
PROVIDER_MODELS = {
    "openai-chat": "databricks-qwen35-122b-a10b",
    "anthropic": "claude-sonnet-4-6",
    "gemini": "gemini-2-5-flash",
    "openai-responses": "gpt-5-4",
}
# OpenAI serves Chat Completions clients over Chat Completions; to send every client API
# through the Responses wire, the matrix adds a provider that speaks only Responses.
RESPONSES_ONLY = "responses-only"


def responses_only_config(upstream_url: str) -> str:
    """EDGE_CONFIG text adding the Responses-only provider and model."""
    return f"""
[catalog.providers.{RESPONSES_ONLY}]
kind = "openai"
apis = ["responses"]
base_url = "{upstream_url}/v1"
api_key = "sk-responses-only-0123456789"

[[catalog.models]]
id = "{RESPONSES_ONLY}"
provider = "{RESPONSES_ONLY}"
upstream = "gpt-5.4"
"""


WEATHER_TOOL = {
    "name": "weather",
    "description": "The weather in a place",
    "parameters": {
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
    },
}


@dataclass
class Outcome:
    """One call's result."""

    status: int
    headers: dict[str, str]
    answer: Answer | None
    error: Any = None  # the JSON error body of a non-200 answer


# Requests --------------------------------------------------------------------------------


def request_for(
    api: str, model: str, prompt: str, stream: bool, tools: bool = False, **extra: Any
) -> tuple[str, dict[str, Any]]:
    """(path, body) of a one-message request in a client API."""
    if api == "chat":
        body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": prompt}]}
        if stream:
            body |= {"stream": True, "stream_options": {"include_usage": True}}
        if tools:
            body["tools"] = [{"type": "function", "function": WEATHER_TOOL}]
        return "/v1/chat/completions", body | extra
    if api == "messages":
        body = {
            "model": model,
            "max_tokens": 1024,
            "messages": [{"role": "user", "content": prompt}],
            "stream": stream,
        }
        if tools:
            body["tools"] = [
                {
                    "name": WEATHER_TOOL["name"],
                    "description": WEATHER_TOOL["description"],
                    "input_schema": WEATHER_TOOL["parameters"],
                }
            ]
        return "/v1/messages", body | extra
    if api == "gemini":
        body = {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}
        if tools:
            body["tools"] = [{"functionDeclarations": [WEATHER_TOOL]}]
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return f"/v1beta/models/{model}:{method}", body | extra
    body = {"model": model, "input": prompt, "stream": stream}
    if tools:
        body["tools"] = [{"type": "function", **WEATHER_TOOL}]
    return "/v1/responses", body | extra


async def call(gateway: Live, key: str, api: str, path: str, body: dict[str, Any]) -> Outcome:
    """POST a request and read the answer with the API's reader."""
    assert gateway.http is not None
    headers = {"Authorization": f"Bearer {key}"}
    async with gateway.http.post(f"{gateway.url}{path}", json=body, headers=headers) as resp:
        raw = await resp.read()
        status, got_headers = resp.status, {k.lower(): v for k, v in resp.headers.items()}
        ctype = resp.headers.get("Content-Type", "")
    if status != 200:
        return Outcome(status, got_headers, None, orjson.loads(raw))
    stream = ctype.startswith("text/event-stream")
    if api == "gemini" and "alt=sse" not in path and "streamGenerateContent" in path:
        answer = read_gemini_array(raw)
    else:
        answer = READERS[(api, stream)](raw)
    return Outcome(status, got_headers, answer)


@dataclass(frozen=True)
class Family:
    """A provider family: a catalog model and recordings of a text and a tool-call answer."""

    name: str
    model: str
    api: str  # the recordings folder
    text: str  # recording stem: `<stem>.json` and `<stem>.chunks.txt`
    tool: str

    def recording(self, stem: str, stream: bool) -> Any:
        """The whole or streamed recording of a stem."""
        from tests.support.recordings import recordings

        wanted = f"{stem}.chunks.txt" if stream else f"{stem}.json"
        return next(r for r in recordings(self.api) if r.name == wanted)  # type: ignore[arg-type]

    def seen_from(self, client_api: str) -> Family:
        """The family whose wire the provider speaks to this client API: OpenAI answers Chat
        Completions clients over Chat Completions (a passthrough), the others over Responses."""
        if self.name == "openai" and client_api == "chat":
            chat = next(f for f in FAMILIES if f.api == "openai-chat")
            return Family(self.name, self.model, chat.api, chat.text, chat.tool)
        return self


FAMILIES = (
    Family(
        "anthropic",
        PROVIDER_MODELS["anthropic"],
        "anthropic",
        "anthropic-text",
        "anthropic-tool-no-args",
    ),
    Family("gemini", PROVIDER_MODELS["gemini"], "gemini", "google-text", "google-tool-call"),
    Family(
        "openai-compatible",
        PROVIDER_MODELS["openai-chat"],
        "openai-chat",
        "openai-text",
        "deepseek-tool-call",
    ),
    Family(
        "openai",
        PROVIDER_MODELS["openai-responses"],
        "openai-responses",
        "lmstudio-basic.1",
        "lmstudio-tool-call.1",
    ),
)


def responses_available(live: Live) -> bool:
    """Whether this build serves the Responses API (client side and provider adapter)."""

    assert live.app is not None
    paths = {r.canonical for r in live.app.router.resources()}
    return "/v1/responses" in paths and "responses" in ADAPTERS
