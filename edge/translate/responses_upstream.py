"""The OpenAI Responses API as a provider wire API: neutral requests out, neutral answers back.

This is what lets the other client APIs reach models served only through Responses.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from edge.errors import GatewayError
from edge.sse import SSEParser
from edge.translate import neutral as n
from edge.translate.common import unsupported
from edge.translate.responses_items import input_items
from edge.translate.responses_wire import event_type, members
from edge.translate.upstream import StreamCall, UpstreamContext
from edge.translate.upstream_http import malformed
from edge.upstream.auth import upstream_headers
from edge.upstream.client import interrupted, open_upstream, read_capped, read_error_body
from edge.upstream.endpoints import responses_url
from edge.upstream.errors import scrub, upstream_error
from edge.upstream.headers import forwarded
from edge.usage import Usage, from_openai_responses

_INCOMPLETE = {"max_output_tokens": "length", "content_filter": "content_filter"}


def _tool_choice(choice: n.ToolChoice | None) -> Any:
    if choice is None or choice in ("auto", "none", "required"):
        return choice
    return {"type": "function", "name": choice}


def request_body(req: n.Request, stream: bool) -> dict[str, Any]:
    """A Responses create body for a neutral request."""
    if req.stop:
        raise unsupported("'stop' sequences", "by this model's API (Responses)", "stop")
    body: dict[str, Any] = {
        "model": req.model,
        "input": input_items(req.items),
        "stream": stream,
        # The gateway keeps transcripts itself; the provider needs no copy of translated calls.
        "store": False,
    }
    tools: list[dict[str, Any]] = [
        {
            "type": "function",
            "name": t.name,
            "description": t.description,
            "parameters": t.parameters or {"type": "object", "properties": {}},
            "strict": t.strict if t.strict is not None else False,
        }
        for t in req.tools
    ]
    tools += [{**h.config, "type": h.type} for h in req.hosted_tools]
    if tools:
        body["tools"] = tools
    optional: dict[str, Any] = {
        "tool_choice": _tool_choice(req.tool_choice),
        "parallel_tool_calls": req.parallel_tool_calls,
        "max_output_tokens": req.max_output_tokens,
        "temperature": req.temperature,
        "top_p": req.top_p,
        "metadata": req.metadata or None,
        **{k: req.extra.get(k) for k in ("prompt_cache_key", "truncation", "safety_identifier")},
        "max_tool_calls": req.extra.get("max_tool_calls"),
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    text: dict[str, Any] = {}
    fmt = req.response_format
    if fmt is not None and fmt.type == "json_schema":
        text["format"] = {
            "type": "json_schema",
            "name": fmt.name or "output",
            "schema": fmt.schema,
            "strict": bool(fmt.strict),
            **({"description": fmt.description} if fmt.description else {}),
        }
    elif fmt is not None and fmt.type == "json_object":
        text["format"] = {"type": "json_object"}
    if req.extra.get("verbosity"):
        text["verbosity"] = req.extra["verbosity"]
    if text:
        body["text"] = text
    if req.reasoning is not None:
        reasoning = {"effort": req.reasoning.effort, "summary": req.reasoning.summary}
        body["reasoning"] = {k: v for k, v in reasoning.items() if v is not None}
        # Without provider-side storage, reasoning carries over turns only in encrypted form.
        body["include"] = ["reasoning.encrypted_content"]
    return body


def _texts(parts: Any, kinds: tuple[str, ...]) -> str:
    if not isinstance(parts, list):
        return ""
    return "".join(
        str(p.get("text", "")) for p in parts if isinstance(p, dict) and p.get("type") in kinds
    )


def _item(raw: dict[str, Any]) -> n.Item | None:
    kind = raw.get("type")
    if kind == "message":
        content = raw.get("content")
        refusal = "".join(
            str(p.get("refusal", ""))
            for p in content or []
            if isinstance(p, dict) and p.get("type") == "refusal"
        )
        text = _texts(content, ("output_text",))
        return n.Message(
            role="assistant", parts=[n.TextPart(text)], refusal=refusal or None, id=raw.get("id")
        )
    if kind == "function_call":
        return n.ToolCall(
            call_id=str(raw.get("call_id", "")),
            name=str(raw.get("name", "")),
            arguments=str(raw.get("arguments") or "{}"),
            id=raw.get("id"),
        )
    if kind == "reasoning":
        summary = raw.get("summary")
        return n.Reasoning(
            text=_texts(raw.get("content"), ("reasoning_text",)),
            summary=[s["text"] for s in summary or [] if isinstance(s, dict) and "text" in s],
            encrypted=raw.get("encrypted_content"),
            id=raw.get("id"),
        )
    return None  # hosted-tool items have no neutral form


def _stop(body: dict[str, Any], items: list[n.Item]) -> n.StopReason:
    details = body.get("incomplete_details")
    if body.get("status") == "incomplete" and isinstance(details, dict):
        return _INCOMPLETE.get(str(details.get("reason")), "length")  # type: ignore[return-value]
    return "tool_calls" if any(isinstance(i, n.ToolCall) for i in items) else "stop"


def parse_response(body: dict[str, Any]) -> n.Response:
    """A whole Responses object as a neutral answer."""
    items = [i for i in (_item(o) for o in body.get("output") or [] if isinstance(o, dict)) if i]
    return n.Response(
        id=str(body.get("id", "")),
        model=str(body.get("model", "")),
        items=items,
        stop_reason=_stop(body, items),
        usage=from_openai_responses(body.get("usage")) or Usage(),
        created=int(body.get("created_at") or 0),
    )


def _failure(data: dict[str, Any]) -> GatewayError:
    err = data.get("error")
    if not isinstance(err, dict):
        response = data.get("response")
        err = response.get("error") if isinstance(response, dict) else None
    err = err if isinstance(err, dict) else {}
    message = err.get("message")
    code = err.get("code")
    return GatewayError(
        502,
        scrub(message) if isinstance(message, str) else "The upstream provider failed.",
        code=code if isinstance(code, str) else "upstream_error",
    )


# Streamed text: delta event -> (what it belongs to, the neutral event it becomes).
_DELTAS: dict[str, tuple[str, type[n.TextDelta | n.RefusalDelta | n.ReasoningDelta]]] = {
    "response.output_text.delta": ("text", n.TextDelta),
    "response.refusal.delta": ("refusal", n.RefusalDelta),
    "response.reasoning_text.delta": ("reasoning", n.ReasoningDelta),
    "response.reasoning_summary_text.delta": ("summary", n.ReasoningDelta),
}
# Done event -> (what it belongs to, the field with the whole text, the neutral event).
_DONES: dict[str, tuple[str, str, type[n.TextDelta | n.RefusalDelta | n.ReasoningDelta]]] = {
    "response.output_text.done": ("text", "text", n.TextDelta),
    "response.refusal.done": ("refusal", "refusal", n.RefusalDelta),
    "response.reasoning_text.done": ("reasoning", "text", n.ReasoningDelta),
    "response.reasoning_summary_text.done": ("summary", "text", n.ReasoningDelta),
}


class _StreamState:
    """Provider events to neutral events, for one stream.

    A done event carries the whole text or arguments; whatever its deltas did not deliver
    (servers that send only the done event, or fewer deltas than the text) is sent from it.
    """

    def __init__(self) -> None:
        self.calls: set[int] = set()
        self.streamed: dict[tuple[str, int, int], str] = {}
        self.done = False

    def _rest(self, key: tuple[str, int, int], whole: str) -> str:
        sent = self.streamed.get(key, "")
        self.streamed[key] = whole
        return whole[len(sent) :] if whole.startswith(sent) else ""

    def convert(self, kind: str, data: dict[str, Any]) -> list[n.Event]:
        """The neutral events for one provider event."""
        raw_index, raw_item = data.get("output_index"), data.get("item")
        index: int = raw_index if isinstance(raw_index, int) else 0
        item: dict[str, Any] = raw_item if isinstance(raw_item, dict) else {}
        part = data.get("content_index", data.get("summary_index", 0))
        part = part if isinstance(part, int) else 0
        delta = str(data.get("delta", ""))
        if kind in _DELTAS:
            group, event = _DELTAS[kind]
            key = (group, index, part)
            self.streamed[key] = self.streamed.get(key, "") + delta
            return [event(delta)] if delta else []
        if kind in _DONES:
            group, name, event = _DONES[kind]
            rest = self._rest((group, index, part), str(data.get(name, "")))
            return [event(rest)] if rest else []
        if kind == "response.created":
            response = data.get("response") or {}
            return [
                n.Start(
                    id=str(response.get("id", "")),
                    model=str(response.get("model", "")),
                    created=int(response.get("created_at") or 0),
                )
            ]
        if kind == "response.output_item.added" and item.get("type") == "function_call":
            self.calls.add(index)
            call_id, name = str(item.get("call_id", "")), str(item.get("name", ""))
            return [n.ToolCallStart(index=index, call_id=call_id, name=name)]
        if kind == "response.function_call_arguments.delta":
            key = ("arguments", index, 0)
            self.streamed[key] = self.streamed.get(key, "") + delta
            return [n.ToolCallDelta(index=index, arguments=delta)]
        if kind == "response.function_call_arguments.done":
            rest = self._rest(("arguments", index, 0), str(data.get("arguments", "")))
            return [n.ToolCallDelta(index=index, arguments=rest)] if rest else []
        if kind == "response.output_item.done" and item.get("type") == "reasoning":
            return [n.ReasoningDone(encrypted=item.get("encrypted_content"))]
        if kind in ("response.completed", "response.incomplete"):
            self.done = True
            response = data.get("response") or {}
            stop: n.StopReason = "tool_calls" if self.calls else "stop"
            if kind == "response.incomplete":
                stop = _stop(response, [])
            return [n.Finish(stop, from_openai_responses(response.get("usage")))]
        if kind in ("error", "response.failed"):
            raise _failure(data)
        return []


# The member each converted event cannot do without: an event cut short before it (a text
# delta cut inside its string) would silently shorten the answer.
_NEEDED: dict[str, str] = {
    **dict.fromkeys(_DELTAS, "delta"),
    **{kind: name for kind, (_, name, _) in _DONES.items()},
    "response.function_call_arguments.delta": "delta",
    "response.function_call_arguments.done": "arguments",
    "response.output_item.added": "item",
    "response.output_item.done": "item",
    "response.completed": "response",
    "response.incomplete": "response",
}


def _complete(kind: str | None, data: dict[str, Any] | None) -> dict[str, Any] | None:
    """The event's members, or a malformed-event error when what it carries was cut off."""
    if data is None:
        if kind is None:
            return None  # no type, no data: nothing a client would have seen
        raise malformed(f"a {kind[:80]} event is not JSON")
    needed = _NEEDED.get(kind or "")
    if needed is not None and needed not in data:
        raise malformed(f"a {kind} event was cut short")
    return data


async def _events(upstream: aiohttp.ClientResponse, limit: int) -> AsyncIterator[n.Event]:
    parser = SSEParser()
    state = _StreamState()
    received = 0
    async for chunk in upstream.content.iter_any():
        received += len(chunk)
        if received > limit:
            raise GatewayError(502, "The upstream provider's response was too large.")
        for event in parser.feed(chunk):
            kind = event_type(event)
            data = _complete(kind, members(event.data))
            if data is None or kind is None:
                continue
            for converted in state.convert(kind, data):
                yield converted
            if state.done:
                return
    raise interrupted()


class ResponsesUpstream:
    """Calls `POST {base_url}/responses`."""

    async def complete(
        self, up: UpstreamContext, req: n.Request
    ) -> tuple[n.Response, list[tuple[str, str]]]:
        """A whole answer and the headers to forward."""
        body = orjson.dumps(request_body(req, stream=False))
        url = responses_url(up.route.provider)
        headers = upstream_headers(up.route.provider, {})
        async with open_upstream(
            up.session, url, body, headers, up.timeouts, admitted=up.admitted
        ) as upstream:
            passed = forwarded(upstream.headers.items())
            raw = await read_capped(upstream, up.body_limit)
            if upstream.status >= 400:
                raise upstream_error(upstream.status, raw, passed)
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise GatewayError(502, "The upstream provider's answer was not JSON.") from exc
        if not isinstance(data, dict):
            raise GatewayError(502, "The upstream provider's answer was not an object.")
        return parse_response(data), passed

    @contextlib.asynccontextmanager
    async def stream(self, up: UpstreamContext, req: n.Request) -> AsyncIterator[StreamCall]:
        """Open a stream; an error status raises before any event."""
        body = orjson.dumps(request_body(req, stream=True))
        url = responses_url(up.route.provider)
        headers = upstream_headers(up.route.provider, {})
        async with open_upstream(
            up.session, url, body, headers, up.timeouts, admitted=up.admitted
        ) as upstream:
            passed = forwarded(upstream.headers.items())
            if upstream.status >= 400:
                raise upstream_error(upstream.status, await read_error_body(upstream), passed)
            yield StreamCall(events=_events(upstream, up.body_limit), headers=passed)
