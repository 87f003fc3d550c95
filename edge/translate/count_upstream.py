"""Counting a request's input tokens when the provider's API is not the client's: Anthropic's
`count_tokens` and Gemini's `countTokens` (the provider's own count), `local/echo`'s own count
(what its calls are charged), else the documented local estimate (`token_estimate`: OpenAI and
OpenAI-compatible servers have no counting endpoint)."""

from __future__ import annotations

from typing import Any

from edge.translate import local_echo
from edge.translate import neutral as n
from edge.translate.anthropic_outbound import messages_body
from edge.translate.anthropic_upstream import messages_url
from edge.translate.gemini_outbound import gemini_body
from edge.translate.gemini_upstream import gemini_url
from edge.translate.token_estimate import request_tokens
from edge.translate.upstream import UpstreamContext
from edge.translate.upstream_http import Forwarded, malformed, post_json, read_json
from edge.upstream.auth import upstream_headers
from edge.upstream.client import require_admitted

# The fields of a Messages body that Anthropic's count_tokens takes (it refuses the others).
COUNT_FIELDS = ("model", "messages", "system", "tools", "tool_choice", "thinking", "output_config")


def messages_count_url(base_url: str | None) -> str:
    """Anthropic's count_tokens endpoint under the API root."""
    return f"{messages_url(base_url)}/count_tokens"


def _tokens(answer: Any, name: str) -> int:
    value = answer.get(name) if isinstance(answer, dict) else None
    if isinstance(value, bool) or not isinstance(value, int):
        raise malformed(f"the count has no '{name}'")
    return value


async def _anthropic(up: UpstreamContext, req: n.Request) -> tuple[int, Forwarded]:
    body, _ = messages_body(req, up.route.model, stream=False)
    counted = {name: value for name, value in body.items() if name in COUNT_FIELDS}
    url = messages_count_url(up.route.provider.base_url)
    headers = upstream_headers(up.route.provider, {})
    async with post_json(up, url, headers, counted) as (resp, passed):
        return _tokens(await read_json(resp, up.body_limit), "input_tokens"), passed


async def _gemini(up: UpstreamContext, req: n.Request) -> tuple[int, Forwarded]:
    upstream = up.route.model.upstream
    counted = {"generateContentRequest": {"model": f"models/{upstream}", **gemini_body(req)}}
    url = gemini_url(up.route.provider.base_url, upstream, "countTokens", sse=False)
    headers = upstream_headers(up.route.provider, {})
    async with post_json(up, url, headers, counted) as (resp, passed):
        return _tokens(await read_json(resp, up.body_limit), "totalTokens"), passed


async def count_tokens(up: UpstreamContext, req: n.Request) -> tuple[int, Forwarded]:
    """The input tokens of `req` on the route's model, and the headers to forward."""
    route = up.route
    if route.provider.kind == "local":
        require_admitted(up.admitted)
        return local_echo.complete(req).usage.input_tokens, []
    if route.upstream_api == "messages":
        return await _anthropic(up, req)
    if route.upstream_api == "gemini":
        return await _gemini(up, req)
    require_admitted(up.admitted)  # no provider call, but the same rule as every count
    return request_tokens(req), []
