"""Chat Completions answers (whole or streamed) from a provider, in neutral form."""

from __future__ import annotations

from typing import Any

from edge.errors import GatewayError
from edge.translate import neutral as n
from edge.translate.common import new_id
from edge.translate.upstream_http import malformed
from edge.usage import Usage, from_openai_chat

STOPS: dict[str, n.StopReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


def _reasoning_text(obj: dict[str, Any]) -> str:
    # DeepSeek calls it `reasoning_content`; vLLM and others `reasoning`.
    value = obj.get("reasoning_content") or obj.get("reasoning")
    return value if isinstance(value, str) else ""


def stream_error(chunk: dict[str, Any]) -> GatewayError:
    """An in-band error object as our error."""
    err = chunk.get("error")
    message = err.get("message") if isinstance(err, dict) else err
    code = err.get("code") if isinstance(err, dict) else None
    status = code if isinstance(code, int) and 400 <= code < 600 else 502
    return GatewayError(
        status,
        str(message or "The upstream provider reported an error."),
        code=code if isinstance(code, str) else "upstream_error",
    )


def chat_response(body: Any) -> n.Response:
    """A whole `chat.completion` body."""
    if not isinstance(body, dict) or not isinstance(body.get("choices"), list):
        raise malformed("the body is not a chat completion")
    if "error" in body and not body["choices"]:
        raise stream_error(body)
    choice = body["choices"][0] if body["choices"] else {}
    message = choice.get("message") or {}
    items: list[n.Item] = []
    reasoning = _reasoning_text(message)
    if reasoning:
        items.append(n.Reasoning(text=reasoning))
    content = message.get("content")
    refusal = message.get("refusal") if isinstance(message.get("refusal"), str) else None
    if (isinstance(content, str) and content) or refusal:
        text = content if isinstance(content, str) else ""
        parts: list[n.Part] = [n.TextPart(text)] if text else []
        items.append(n.Message(role="assistant", parts=parts, refusal=refusal))
    for call in message.get("tool_calls") or []:
        fn = call.get("function") or {}
        items.append(
            n.ToolCall(
                call_id=str(call.get("id") or new_id("call_")),
                name=str(fn.get("name", "")),
                arguments=fn.get("arguments") or "{}",
            )
        )
    stop = STOPS.get(str(choice.get("finish_reason")), "stop")
    if refusal:
        stop = "refusal"
    return n.Response(
        id=str(body.get("id") or new_id("chatcmpl-")),
        model=str(body.get("model") or ""),
        items=items,
        stop_reason=stop,
        usage=from_openai_chat(body.get("usage")) or Usage(),
        created=int(body.get("created") or 0),
    )


class ChatStreamDecoder:
    """`chat.completion.chunk` objects in, neutral events out."""

    def __init__(self) -> None:
        self.started = False
        self.done = False
        self._stop: n.StopReason | None = None
        self._usage: Usage | None = None
        self._reasoning = False
        self._refused = False
        self._calls: dict[int, int] = {}
        self._call_args: set[int] = set()

    def _start(self, chunk: dict[str, Any]) -> list[n.Event]:
        self.started = True
        return [
            n.Start(
                id=str(chunk.get("id") or new_id("chatcmpl-")),
                model=str(chunk.get("model") or ""),
                created=int(chunk.get("created") or 0),
            )
        ]

    def _end_reasoning(self) -> list[n.Event]:
        if not self._reasoning:
            return []
        self._reasoning = False
        return [n.ReasoningDone()]

    def _tool_calls(self, calls: list[Any]) -> list[n.Event]:
        out: list[n.Event] = []
        for call in calls:
            if not isinstance(call, dict):
                continue
            index = call.get("index", len(self._calls))
            fn = call.get("function") or {}
            if index not in self._calls:
                self._calls[index] = len(self._calls)
                out.append(
                    n.ToolCallStart(
                        index=self._calls[index],
                        call_id=str(call.get("id") or new_id("call_")),
                        name=str(fn.get("name") or ""),
                    )
                )
            args = fn.get("arguments")
            if isinstance(args, str) and args:
                self._call_args.add(self._calls[index])
                out.append(n.ToolCallDelta(index=self._calls[index], arguments=args))
        return out

    def _delta(self, delta: dict[str, Any]) -> list[n.Event]:
        out: list[n.Event] = []
        reasoning = _reasoning_text(delta)
        if reasoning:
            self._reasoning = True
            out.append(n.ReasoningDelta(reasoning))
        content = delta.get("content")
        refusal = delta.get("refusal")
        calls = delta.get("tool_calls")
        if (isinstance(content, str) and content) or refusal or calls:
            out.extend(self._end_reasoning())
        if isinstance(content, str) and content:
            out.append(n.TextDelta(content))
        if isinstance(refusal, str) and refusal:
            self._refused = True
            out.append(n.RefusalDelta(refusal))
        if isinstance(calls, list):
            out.extend(self._tool_calls(calls))
        return out

    def feed(self, chunk: dict[str, Any]) -> list[n.Event]:
        """Events for one chunk."""
        if "error" in chunk and not chunk.get("choices"):
            raise stream_error(chunk)
        usage = from_openai_chat(chunk.get("usage"))
        if usage is not None:
            self._usage = usage
        choices = chunk.get("choices") or []
        # Azure opens with a prompt-filter chunk that has no choices, id or model.
        out = self._start(chunk) if not self.started and choices else []
        for choice in choices[:1]:
            if isinstance(choice.get("delta"), dict):
                out.extend(self._delta(choice["delta"]))
            reason = choice.get("finish_reason")
            if reason:
                self._stop = STOPS.get(str(reason), "stop")
        return out

    @property
    def finished(self) -> bool:
        """Whether a finish reason arrived."""
        return self._stop is not None

    def finish(self) -> list[n.Event]:
        """Events that end the stream: `[DONE]` arrived, or the stream ended after a finish."""
        if self._stop is None:
            raise malformed("the stream ended without a finish reason")
        self.done = True
        out = [] if self.started else self._start({})
        out.extend(self._end_reasoning())
        for index in sorted(set(self._calls.values()) - self._call_args):
            out.append(n.ToolCallDelta(index=index, arguments="{}"))
        stop = "refusal" if self._refused and self._stop == "stop" else self._stop
        out.append(n.Finish(stop_reason=stop, usage=self._usage))
        return out
