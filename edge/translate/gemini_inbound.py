"""Gemini answers (whole or streamed) from the provider, in neutral form."""

from __future__ import annotations

import re
from typing import Any

from edge.errors import GatewayError
from edge.translate import neutral as n
from edge.translate.common import new_id
from edge.translate.jsontext import json_text
from edge.translate.upstream_http import malformed
from edge.upstream.errors import scrub
from edge.usage import Usage, from_gemini

FILTERED = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "MODEL_ARMOR",
    }
)
_STATUS = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "NOT_FOUND": 404,
    "RESOURCE_EXHAUSTED": 429,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}
_PATH_STEP = re.compile(r"\.([A-Za-z_][\w-]*)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")


def stop_reason(finish: str | None, called: bool) -> n.StopReason:
    """A Gemini finishReason (and whether the model called a function) in neutral terms."""
    if finish == "MAX_TOKENS":
        return "length"
    if finish in FILTERED:
        return "content_filter"
    return "tool_calls" if called else "stop"


def body_error(body: dict[str, Any]) -> GatewayError:
    """An error object inside a stream, as our error."""
    err: dict[str, Any] = body["error"] if isinstance(body.get("error"), dict) else {}
    code = err.get("code")
    status = code if isinstance(code, int) and 400 <= code < 600 else None
    status = status or _STATUS.get(str(err.get("status")), 502)
    message = err.get("message")
    return GatewayError(
        502 if status >= 500 and status not in (503, 504) else status,
        scrub(message) if isinstance(message, str) else "The upstream provider failed.",
        code=str(err.get("status") or "upstream_error"),
    )


def _steps(path: str) -> list[str | int]:
    steps: list[str | int] = []
    for match in _PATH_STEP.finditer(path.removeprefix("$")):
        name, index, quoted, dquoted = match.groups()
        steps.append(int(index) if index is not None else (name or quoted or dquoted or ""))
    if not steps:
        raise malformed(f"a function-call argument path {path!r}")
    return steps


def lookup(target: dict[str, Any], path: str) -> Any:
    """The value at a JSON path, or None."""
    node: Any = target
    for step in _steps(path):
        if isinstance(node, dict) and isinstance(step, str):
            node = node.get(step)
        elif isinstance(node, list) and isinstance(step, int) and step < len(node):
            node = node[step]
        else:
            return None
    return node


def set_path(target: dict[str, Any], path: str, value: Any) -> None:
    """Set `value` at a JSON path like `$.a.b[0]['c']` (streamed function-call arguments)."""
    steps = _steps(path)
    node: Any = target
    for step, following in zip(steps, [*steps[1:], None], strict=True):
        fresh: Any = value if following is None else [] if isinstance(following, int) else {}
        if isinstance(node, list) and isinstance(step, int):
            node.extend([None] * (step + 1 - len(node)))
            if following is None or node[step] is None:
                node[step] = fresh
            node = node[step]
        elif isinstance(node, dict) and isinstance(step, str):
            if following is None or step not in node:
                node[step] = fresh
            node = node[step]
        else:
            raise malformed(f"a function-call argument path {path!r}")


def _partial_value(arg: dict[str, Any], previous: Any) -> Any:
    if "stringValue" in arg:
        prefix = previous if isinstance(previous, str) else ""
        return prefix + str(arg["stringValue"])
    if "numberValue" in arg:
        return arg["numberValue"]
    if "boolValue" in arg:
        return arg["boolValue"]
    return None


def _candidate(body: dict[str, Any]) -> dict[str, Any]:
    candidates = body.get("candidates")
    if isinstance(candidates, list) and candidates and isinstance(candidates[0], dict):
        return candidates[0]
    return {}


def _parts(candidate: dict[str, Any]) -> list[dict[str, Any]]:
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    return [p for p in parts if isinstance(p, dict)] if isinstance(parts, list) else []


def _call(fc: dict[str, Any]) -> n.ToolCall:
    return n.ToolCall(
        call_id=str(fc.get("id") or new_id("call_")),
        name=str(fc.get("name", "")),
        arguments=json_text(fc.get("args") or {}),
    )


def gemini_response(body: Any) -> n.Response:
    """A whole `GenerateContentResponse`."""
    if not isinstance(body, dict):
        raise malformed("the body is not a GenerateContentResponse")
    if "error" in body:
        raise body_error(body)
    candidate = _candidate(body)
    items: list[n.Item] = []
    for part in _parts(candidate):
        signature = part.get("thoughtSignature")
        if part.get("thought"):
            items.append(n.Reasoning(text=str(part.get("text", "")), signature=signature))
        elif isinstance(part.get("functionCall"), dict):
            if signature:
                items.append(n.Reasoning(signature=signature))
            items.append(_call(part["functionCall"]))
        elif isinstance(part.get("text"), str) and part["text"]:
            last = items[-1] if items else None
            if isinstance(last, n.Message):
                # Gemini may cut one answer's text into several parts: they are one message,
                # as they are when streamed. As separate messages, a client that reads the
                # last one (the Agents SDK's final output) kept a fragment, and a structured
                # answer split in two parsed as neither.
                last.parts = [n.TextPart(last.text + part["text"])]
            else:
                items.append(n.Message(role="assistant", parts=[n.TextPart(part["text"])]))
    called = any(isinstance(i, n.ToolCall) for i in items)
    finish = candidate.get("finishReason")
    blocked = (body.get("promptFeedback") or {}).get("blockReason")
    return n.Response(
        id=str(body.get("responseId") or new_id("resp_")),
        model=str(body.get("modelVersion") or ""),
        items=items,
        stop_reason="content_filter" if blocked else stop_reason(finish, called),
        usage=from_gemini(body.get("usageMetadata")) or Usage(),
    )


class GeminiStreamDecoder:
    """`GenerateContentResponse` chunks in, neutral events out."""

    def __init__(self) -> None:
        self._started = False
        self._finish: str | None = None
        self._blocked = False
        self._usage: Usage | None = None
        self._reasoning = False
        self._calls = 0
        self._partial: dict[str, Any] | None = None  # arguments of a call still streaming
        self._last_path: str | None = None

    @property
    def finished(self) -> bool:
        """Whether a finish reason (or a prompt block) arrived."""
        return self._finish is not None or self._blocked

    def _end_reasoning(self, signature: str | None = None) -> list[n.Event]:
        if not self._reasoning and signature is None:
            return []
        self._reasoning = False
        return [n.ReasoningDone(signature=signature)]

    def _flush_call(self) -> list[n.Event]:
        if self._partial is None:
            return []
        args, self._partial, self._last_path = self._partial, None, None
        return [n.ToolCallDelta(index=self._calls - 1, arguments=json_text(args))]

    def _function_call(self, fc: dict[str, Any], signature: str | None) -> list[n.Event]:
        if not fc.get("name"):
            for arg in fc.get("partialArgs") or []:
                if self._partial is None or not isinstance(arg, dict):
                    raise malformed("function-call arguments outside a call")
                path = str(arg.get("jsonPath", ""))
                previous = lookup(self._partial, path) if path == self._last_path else None
                set_path(self._partial, path, _partial_value(arg, previous))
                self._last_path = path
            return [] if fc.get("willContinue") else self._flush_call()
        out = [*self._flush_call(), *self._end_reasoning(signature)]
        call = _call(fc)
        out.append(n.ToolCallStart(index=self._calls, call_id=call.call_id, name=call.name))
        self._calls += 1
        if fc.get("willContinue") and not fc.get("args"):
            self._partial = {}
        else:
            out.append(n.ToolCallDelta(index=self._calls - 1, arguments=call.arguments))
        return out

    def _part(self, part: dict[str, Any]) -> list[n.Event]:
        signature = part.get("thoughtSignature")
        text = part.get("text")
        if part.get("thought"):
            self._reasoning = True
            out: list[n.Event] = [n.ReasoningDelta(text)] if isinstance(text, str) and text else []
            return out + (self._end_reasoning(signature) if signature else [])
        if isinstance(part.get("functionCall"), dict):
            return self._function_call(part["functionCall"], signature)
        if isinstance(text, str) and text:
            return [*self._flush_call(), *self._end_reasoning(), n.TextDelta(text)]
        return []

    def feed(self, chunk: dict[str, Any]) -> list[n.Event]:
        """Events for one chunk."""
        if "error" in chunk:
            raise body_error(chunk)
        out: list[n.Event] = []
        if not self._started:
            self._started = True
            out.append(
                n.Start(
                    id=str(chunk.get("responseId") or new_id("resp_")),
                    model=str(chunk.get("modelVersion") or ""),
                )
            )
        usage = from_gemini(chunk.get("usageMetadata"))
        if usage is not None and (usage.input_tokens or usage.output_tokens):
            self._usage = usage
        if (chunk.get("promptFeedback") or {}).get("blockReason"):
            self._blocked = True
        candidate = _candidate(chunk)
        for part in _parts(candidate):
            out.extend(self._part(part))
        if candidate.get("finishReason"):
            self._finish = str(candidate["finishReason"])
        return out

    def finish(self) -> list[n.Event]:
        """The events that end the stream."""
        out = [*self._flush_call(), *self._end_reasoning()]
        stop = "content_filter" if self._blocked else stop_reason(self._finish, self._calls > 0)
        out.append(n.Finish(stop_reason=stop, usage=self._usage))
        return out
