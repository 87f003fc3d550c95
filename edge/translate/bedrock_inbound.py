"""Amazon Bedrock Converse answers (whole, or ConverseStream events) in neutral form."""

from __future__ import annotations

from typing import Any

from edge.errors import GatewayError
from edge.translate import neutral as n
from edge.translate.common import new_id
from edge.translate.jsontext import json_text
from edge.translate.upstream_http import malformed
from edge.upstream.errors import scrub
from edge.usage import Usage

STOPS: dict[str, n.StopReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
# ConverseStream exception events, as the status the same error has on a whole call.
_EXCEPTION_STATUS = {
    "validationException": 400,
    "throttlingException": 429,
    "serviceUnavailableException": 503,
    "modelStreamErrorException": 502,
    "internalServerException": 502,
}


def _int(obj: dict[str, Any], *names: str) -> int:
    for name in names:
        value = obj.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return 0


def bedrock_usage(usage: Any) -> Usage | None:
    """Converse `usage`: input excludes cache reads and writes, so they are added."""
    if not isinstance(usage, dict):
        return None
    cached = _int(usage, "cacheReadInputTokens", "cacheReadInputTokenCount")
    written = _int(usage, "cacheWriteInputTokens", "cacheWriteInputTokenCount")
    return Usage(
        input_tokens=_int(usage, "inputTokens") + cached + written,
        output_tokens=_int(usage, "outputTokens"),
        cached_tokens=cached,
        cache_write_tokens=written,
    )


def exception_error(kind: str, payload: Any) -> GatewayError:
    """A stream's exception message as our error."""
    message = payload.get("message") if isinstance(payload, dict) else None
    return GatewayError(
        _EXCEPTION_STATUS.get(kind, 502),
        scrub(message) if isinstance(message, str) else "The upstream provider failed.",
        code=kind,
    )


def _block_item(block: dict[str, Any]) -> n.Item | None:
    if isinstance(block.get("text"), str):
        return n.Message(role="assistant", parts=[n.TextPart(block["text"])])
    use = block.get("toolUse")
    if isinstance(use, dict):
        args = json_text(use.get("input") or {})
        return n.ToolCall(
            call_id=str(use.get("toolUseId")), name=str(use.get("name")), arguments=args
        )
    reasoning = block.get("reasoningContent")
    if isinstance(reasoning, dict):
        if reasoning.get("redactedContent"):
            return n.Reasoning(redacted=True, encrypted=str(reasoning["redactedContent"]))
        text = reasoning.get("reasoningText") or {}
        return n.Reasoning(text=str(text.get("text", "")), signature=text.get("signature"))
    return None  # images, citations and future blocks carry nothing we relay


def converse_response(body: Any, model: str) -> n.Response:
    """A whole Converse response body."""
    message = (body.get("output") or {}).get("message") if isinstance(body, dict) else None
    if not isinstance(message, dict) or not isinstance(message.get("content"), list):
        raise malformed("the body is not a Converse response")
    items = [
        item
        for block in message["content"]
        if isinstance(block, dict) and (item := _block_item(block)) is not None
    ]
    return n.Response(
        id=new_id("msg_bdrk_"),  # Converse answers carry no id
        model=model,
        items=items,
        stop_reason=STOPS.get(str(body.get("stopReason")), "stop"),
        usage=bedrock_usage(body.get("usage")) or Usage(),
    )


class ConverseStreamDecoder:
    """ConverseStream events in, neutral events out. `messageStop` and `metadata` (the usage)
    come in either order: the finish is emitted once both are in, or at the stream's end."""

    def __init__(self, model: str) -> None:
        self._model = model
        self._started = False
        self.stopped = False
        self._stop: n.StopReason = "stop"
        self._usage: Usage | None = None
        self._finished = False
        self._kinds: dict[int, str] = {}  # block index -> text | tool | reasoning
        self._tools: dict[int, int] = {}  # block index -> tool-call position
        self._tool_args: set[int] = set()
        self._signature: dict[int, str] = {}

    def feed(self, kind: str, data: dict[str, Any]) -> list[n.Event]:
        """Events for one stream event."""
        out: list[n.Event] = []
        if not self._started:
            self._started = True
            out.append(n.Start(id=new_id("msg_bdrk_"), model=self._model))
        if self._finished or kind == "messageStart":
            return out
        index = data.get("contentBlockIndex")
        if kind == "contentBlockStart" and isinstance(index, int):
            out += self._block_start(index, data.get("start") or {})
        elif kind == "contentBlockDelta" and isinstance(index, int):
            out += self._block_delta(index, data.get("delta") or {})
        elif kind == "contentBlockStop" and isinstance(index, int):
            out += self._block_stop(index)
        elif kind == "messageStop":
            self.stopped = True
            self._stop = STOPS.get(str(data.get("stopReason")), "stop")
        elif kind == "metadata":
            self._usage = bedrock_usage(data.get("usage"))
        if self.stopped and self._usage is not None:
            out += self.finish()
        return out

    def finish(self) -> list[n.Event]:
        """The finish, once (the stream must have had its messageStop)."""
        if self._finished:
            return []
        if not self.stopped:
            raise malformed("the stream ended without messageStop")
        self._finished = True
        return [n.Finish(stop_reason=self._stop, usage=self._usage)]

    def _block_start(self, index: int, start: dict[str, Any]) -> list[n.Event]:
        if index in self._kinds:
            raise malformed(f"content block {index} started twice")
        use = start.get("toolUse")
        if not isinstance(use, dict):
            return []
        self._kinds[index] = "tool"
        self._tools[index] = len(self._tools)
        call_id = str(use.get("toolUseId") or new_id("tooluse_"))
        return [n.ToolCallStart(self._tools[index], call_id, str(use.get("name", "")))]

    def _block_delta(self, index: int, delta: dict[str, Any]) -> list[n.Event]:
        if isinstance(delta.get("text"), str):
            self._kinds.setdefault(index, "text")
            return [n.TextDelta(delta["text"])] if delta["text"] else []
        use = delta.get("toolUse")
        if isinstance(use, dict):
            if index not in self._tools:
                raise malformed(f"tool input for content block {index}, which is no tool call")
            text = str(use.get("input") or "")
            if not text:
                return []
            self._tool_args.add(index)
            return [n.ToolCallDelta(index=self._tools[index], arguments=text)]
        reasoning = delta.get("reasoningContent")
        if isinstance(reasoning, dict):
            self._kinds.setdefault(index, "reasoning")
            if reasoning.get("signature"):
                self._signature[index] = self._signature.get(index, "") + str(
                    reasoning["signature"]
                )
            if reasoning.get("redactedContent"):
                self._kinds[index] = "redacted"  # complete in itself: its stop adds nothing
                encrypted = str(reasoning["redactedContent"])
                return [n.ReasoningDone(redacted=True, encrypted=encrypted)]
            thought = reasoning.get("text")
            return [n.ReasoningDelta(thought)] if isinstance(thought, str) and thought else []
        return []

    def _block_stop(self, index: int) -> list[n.Event]:
        kind = self._kinds.get(index)
        if kind == "reasoning":
            return [n.ReasoningDone(signature=self._signature.get(index) or None)]
        if index in self._tools and index not in self._tool_args:
            return [n.ToolCallDelta(index=self._tools[index], arguments="{}")]
        return []
