"""Reading any client API's answer back into one comparable shape, checking as it goes that
a stream is a valid stream of its API (event order, block indexes, the final marker)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass
class Usage:
    """Tokens in neutral terms: input includes cached, output includes reasoning."""

    input: int = 0
    output: int = 0
    cached: int = 0
    reasoning: int = 0


@dataclass
class Answer:
    """What a client assembles from a response."""

    text: str = ""
    reasoning: str = ""
    calls: list[tuple[str, Any]] = field(default_factory=list)  # (name, parsed arguments)
    call_ids: list[str] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    finish: str = ""
    signatures: list[str] = field(default_factory=list)
    error: dict[str, Any] | None = None  # a terminal error event inside a stream
    raw: Any = None
    trailing: int = 0  # events after the terminal one
    unreadable: int = 0  # events whose data is not JSON


def _args(text: str) -> Any:
    return orjson.loads(text) if text.strip() else {}


def sse_events(raw: bytes) -> list[tuple[str | None, str]]:
    """(event name, data) of each SSE event."""
    out = []
    for block in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
        name, data = None, []
        for line in block.decode().split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
        if data:
            out.append((name, "\n".join(data)))
    return out


def read_chat(raw: bytes) -> Answer:
    """A `chat.completion` body."""
    body = orjson.loads(raw)
    message = body["choices"][0]["message"]
    usage = body.get("usage") or {}
    answer = Answer(
        text=message.get("content") or "",
        reasoning=message.get("reasoning_content") or "",
        model=body["model"],
        finish=body["choices"][0]["finish_reason"],
        usage=_chat_usage(usage),
        raw=body,
    )
    for call_ in message.get("tool_calls") or []:
        answer.calls.append((call_["function"]["name"], _args(call_["function"]["arguments"])))
        answer.call_ids.append(call_["id"])
    return answer


def _chat_usage(usage: dict[str, Any]) -> Usage:
    return Usage(
        input=usage.get("prompt_tokens", 0),
        output=usage.get("completion_tokens", 0),
        cached=(usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0),
        reasoning=(usage.get("completion_tokens_details") or {}).get("reasoning_tokens", 0),
    )


def read_chat_stream(raw: bytes) -> Answer:
    """Chunks then `[DONE]`; an error chunk is terminal."""
    events = sse_events(raw)
    answer = Answer(raw=events)
    calls: dict[int, list[str]] = {}
    for position, (_, data) in enumerate(events):
        if data == "[DONE]":
            assert position == len(events) - 1, "[DONE] must be last"
            break
        chunk = orjson.loads(data)
        if "error" in chunk:
            assert position == len(events) - 1, "an error chunk must be last"
            answer.error = chunk["error"]
            break
        answer.model = chunk.get("model") or answer.model
        if chunk.get("usage"):
            answer.usage = _chat_usage(chunk["usage"])
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            answer.text += delta.get("content") or ""
            answer.reasoning += delta.get("reasoning_content") or ""
            for tc in delta.get("tool_calls") or []:
                entry = calls.setdefault(tc["index"], ["", "", ""])
                entry[0] = tc.get("id") or entry[0]
                entry[1] += (tc.get("function") or {}).get("name") or ""
                entry[2] += (tc.get("function") or {}).get("arguments") or ""
            answer.finish = choice.get("finish_reason") or answer.finish
    else:
        raise AssertionError("a chat stream must end with [DONE] or an error chunk")
    for call_id, name, args in calls.values():
        answer.calls.append((name, args if answer.error else _args(args)))
        answer.call_ids.append(call_id)
    return answer


def _anthropic_usage(usage: dict[str, Any]) -> Usage:
    cached = usage.get("cache_read_input_tokens") or 0
    written = usage.get("cache_creation_input_tokens") or 0
    return Usage(
        input=(usage.get("input_tokens") or 0) + cached + written,
        output=usage.get("output_tokens") or 0,
        cached=cached,
        reasoning=(usage.get("output_tokens_details") or {}).get("thinking_tokens", 0),
    )


def _blocks_answer(blocks: list[dict[str, Any]], answer: Answer) -> Answer:
    for block in blocks:
        if block["type"] == "text":
            answer.text += block["text"]
        elif block["type"] == "thinking":
            answer.reasoning += block["thinking"]
            if block.get("signature"):
                answer.signatures.append(block["signature"])
        elif block["type"] == "tool_use":
            answer.calls.append((block["name"], block["input"]))
            answer.call_ids.append(block["id"])
    return answer


def read_messages(raw: bytes) -> Answer:
    """A `message` body."""
    body = orjson.loads(raw)
    assert body["type"] == "message"
    answer = Answer(model=body["model"], finish=body["stop_reason"], raw=body)
    answer.usage = _anthropic_usage(body["usage"])
    return _blocks_answer(body["content"], answer)


def read_messages_stream(raw: bytes) -> Answer:
    """message_start, blocks opened and closed in index order, message_delta, message_stop."""
    events = sse_events(raw)
    answer = Answer(raw=events)
    blocks: list[dict[str, Any]] = []
    usage: dict[str, Any] = {}
    open_index: int | None = None
    assert events and events[0][0] in ("message_start", "error"), "must open with message_start"
    for position, (name, data) in enumerate(events):
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            answer.unreadable += 1  # only a relayed provider stream may hold one
            continue
        assert event["type"] == name, "the event line names the data's type"
        if name == "error":
            assert position == len(events) - 1, "an error event must be last"
            answer.error = event["error"]
            break
        if name == "message_start":
            assert position == 0, "one message_start, first"
            answer.model = event["message"]["model"]
            usage.update(event["message"]["usage"])
        elif name == "content_block_start":
            assert open_index is None and event["index"] == len(blocks), "blocks in order"
            open_index = event["index"]
            blocks.append(dict(event["content_block"], _json=""))
        elif name == "content_block_delta":
            block, delta = blocks[event["index"]], event["delta"]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif delta["type"] == "signature_delta":
                block["signature"] += delta["signature"]
            elif delta["type"] == "input_json_delta":
                block["_json"] += delta["partial_json"]
        elif name == "content_block_stop":
            assert event["index"] == open_index, "stop the open block"
            open_index = None
        elif name == "message_delta":
            assert open_index is None
            answer.finish = event["delta"]["stop_reason"]
            usage.update({k: v for k, v in event["usage"].items() if v is not None})
        elif name == "message_stop":
            assert position == len(events) - 1, "message_stop must be last"
    else:
        if answer.error is None:
            assert events[-1][0] == "message_stop", "a stream ends with message_stop"
    for block in blocks:
        if block["type"] == "tool_use" and block["_json"] and answer.error is None:
            block["input"] = orjson.loads(block["_json"])
    answer.usage = _anthropic_usage(usage)
    return _blocks_answer(blocks, answer)


def _gemini_usage(meta: dict[str, Any]) -> Usage:
    thoughts = meta.get("thoughtsTokenCount", 0)
    return Usage(
        input=meta.get("promptTokenCount", 0),
        output=meta.get("candidatesTokenCount", 0) + thoughts,
        cached=meta.get("cachedContentTokenCount", 0),
        reasoning=thoughts,
    )


def _gemini_chunk(chunk: dict[str, Any], answer: Answer, partial: dict[str, Any]) -> None:
    answer.model = chunk.get("modelVersion") or answer.model
    meta = chunk.get("usageMetadata") or {}
    if "promptTokenCount" in meta:
        answer.usage = _gemini_usage(meta)
    for candidate in chunk.get("candidates") or []:
        answer.finish = candidate.get("finishReason") or answer.finish
        for part in (candidate.get("content") or {}).get("parts") or []:
            if part.get("thoughtSignature"):
                answer.signatures.append(part["thoughtSignature"])
            if part.get("thought"):
                answer.reasoning += part.get("text", "")
            elif "functionCall" in part:
                _gemini_call(part["functionCall"], answer, partial)
            else:
                answer.text += part.get("text", "")


def _gemini_call(fc: dict[str, Any], answer: Answer, partial: dict[str, Any]) -> None:
    # Streamed arguments (`partialArgs`) are only used by the provider; flat paths suffice here.
    if fc.get("name"):
        answer.calls.append((fc["name"], dict(fc.get("args") or {})))
        answer.call_ids.append(fc.get("id", ""))
        partial["open"] = bool(fc.get("willContinue"))
        return
    for arg in fc.get("partialArgs") or []:
        key = arg["jsonPath"].removeprefix("$.")
        args = answer.calls[-1][1]
        if "stringValue" in arg:
            args[key] = args.get(key, "") + arg["stringValue"]
        else:
            args[key] = arg.get("numberValue", arg.get("boolValue"))


def read_gemini(raw: bytes) -> Answer:
    """A `GenerateContentResponse`."""
    answer = Answer(raw=orjson.loads(raw))
    _gemini_chunk(answer.raw, answer, {})
    return answer


def read_gemini_stream(raw: bytes) -> Answer:
    """SSE chunks; the last carries the finish reason (or is an error)."""
    events = sse_events(raw)
    answer = Answer(raw=events)
    partial: dict[str, Any] = {}
    for position, (_, data) in enumerate(events):
        chunk = orjson.loads(data)
        if "error" in chunk:
            assert position == len(events) - 1, "an error must be last"
            answer.error = chunk["error"]
            return answer
        _gemini_chunk(chunk, answer, partial)
    assert answer.finish, "a Gemini stream ends with a finish reason"
    return answer


def read_gemini_array(raw: bytes) -> Answer:
    """A non-SSE stream: one JSON array of chunks."""
    chunks = orjson.loads(raw)
    assert isinstance(chunks, list)
    answer = Answer(raw=chunks)
    partial: dict[str, Any] = {}
    for chunk in chunks:
        if "error" in chunk:
            answer.error = chunk["error"]
            break
        _gemini_chunk(chunk, answer, partial)
    return answer


def _responses_output(body: dict[str, Any], answer: Answer) -> Answer:
    answer.model = body.get("model", "")
    for item in body.get("output") or []:
        if item["type"] == "message":
            for part in item.get("content") or []:
                answer.text += part.get("text", "")
        elif item["type"] == "function_call":
            answer.calls.append((item["name"], _args(item["arguments"])))
            answer.call_ids.append(item["call_id"])
        elif item["type"] == "reasoning":
            texts = item.get("content") or item.get("summary") or []
            answer.reasoning += "".join(t.get("text", "") for t in texts)
            if item.get("encrypted_content"):
                answer.signatures.append(item["encrypted_content"])
    usage = body.get("usage") or {}
    answer.usage = Usage(
        input=usage.get("input_tokens", 0),
        output=usage.get("output_tokens", 0),
        cached=(usage.get("input_tokens_details") or {}).get("cached_tokens", 0),
        reasoning=(usage.get("output_tokens_details") or {}).get("reasoning_tokens", 0),
    )
    answer.finish = body.get("status", "")
    return answer


def read_responses(raw: bytes) -> Answer:
    """A `response` object."""
    body = orjson.loads(raw)
    return _responses_output(body, Answer(raw=body))


def read_responses_stream(raw: bytes) -> Answer:
    """`response.created` ... `response.completed` with increasing sequence numbers."""
    events = sse_events(raw)
    answer = Answer(raw=events)
    sequence = -1
    final: dict[str, Any] | None = None
    done_items: dict[int, dict[str, Any]] = {}
    for position, (name, data) in enumerate(events):
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            answer.unreadable += 1  # only a relayed provider stream may hold one
            continue
        assert event["type"] == name
        # A relayed provider stream may lack them; a translated one always has them.
        if "sequence_number" in event or sequence >= 0:
            assert event["sequence_number"] > sequence, "sequence numbers increase"
            sequence = event["sequence_number"]
        if name == "response.output_item.done":
            done_items[event["output_index"]] = event["item"]
        if name == "error":
            # OpenAI sends `error` and then `response.failed`; either may end the stream.
            tail = [n for n, _ in events[position + 1 :]]
            assert tail in ([], ["response.failed"]), "only response.failed may follow an error"
            answer.error = event
        elif name in ("response.completed", "response.incomplete", "response.failed"):
            if name == "response.failed":
                answer.error = event["response"].get("error") or event
            final = event.get("response")
            # Anything after the end is not part of this answer (a relayed provider stream
            # may hold it; a translated stream must not).
            answer.trailing = len(events) - position - 1
            break
    assert final is not None or answer.error is not None, "a stream ends with a terminal event"
    if final is not None:
        if not final.get("output") and done_items:
            # A provider may send the items only as events, as the SDKs accumulate them.
            final = {**final, "output": [done_items[i] for i in sorted(done_items)]}
        _responses_output(final, answer)
    return answer


READERS = {
    ("chat", False): read_chat,
    ("chat", True): read_chat_stream,
    ("messages", False): read_messages,
    ("messages", True): read_messages_stream,
    ("gemini", False): read_gemini,
    ("gemini", True): read_gemini_stream,
    ("responses", False): read_responses,
    ("responses", True): read_responses_stream,
}
