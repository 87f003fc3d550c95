"""The fake upstream's answers: fixed-size bodies and streams of N events for three wire APIs.

Everything is rendered once per configuration, so serving a request only copies bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

Api = Literal["chat", "responses", "messages"]
APIS: tuple[Api, ...] = ("chat", "responses", "messages")
PATHS: dict[bytes, Api] = {
    b"/v1/chat/completions": "chat",
    b"/v1/responses": "responses",
    b"/v1/messages": "messages",
}
MODEL = "bench-model"
WORD = "lorem "  # one streamed delta
INPUT_TOKENS = 12


@dataclass(frozen=True, slots=True)
class Shape:
    """What the fake answers with: body size, stream length and pace."""

    body_bytes: int = 1024  # size of a whole (non-streamed) body
    chunks: int = 20  # content deltas in a stream
    delay: float = 0.0  # seconds between two stream events

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Shape:
        """Parse the control endpoint's body."""
        return cls(
            body_bytes=int(data.get("body_bytes", 1024)),
            chunks=int(data.get("chunks", 20)),
            delay=float(data.get("delay", 0.0)),
        )


def _pad(build: Any, size: int) -> bytes:
    """A body of about `size` bytes: the text grows until the JSON reaches the size."""
    empty = orjson.dumps(build(""))
    return orjson.dumps(build("x" * max(0, size - len(empty))))


def whole_body(api: Api, size: int) -> bytes:
    """A complete non-streamed answer of about `size` bytes."""
    usage_out = max(1, size // 8)
    if api == "chat":
        return _pad(
            lambda text: {
                "id": "chatcmpl-bench",
                "object": "chat.completion",
                "created": 1770000000,
                "model": MODEL,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text, "refusal": None},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": INPUT_TOKENS,
                    "completion_tokens": usage_out,
                    "total_tokens": INPUT_TOKENS + usage_out,
                },
            },
            size,
        )
    if api == "responses":
        return _pad(
            lambda text: {
                "id": "resp_bench",
                "object": "response",
                "created_at": 1770000000,
                "status": "completed",
                "model": MODEL,
                "output": [_response_message(text)],
                "usage": _response_usage(usage_out),
            },
            size,
        )
    return _pad(
        lambda text: {
            "id": "msg_bench",
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": INPUT_TOKENS, "output_tokens": usage_out},
        },
        size,
    )


def _response_message(text: str) -> dict[str, Any]:
    return {
        "id": "msg_bench",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def _response_usage(output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": INPUT_TOKENS,
        "output_tokens": output_tokens,
        "total_tokens": INPUT_TOKENS + output_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens_details": {"reasoning_tokens": 0},
    }


def _data(obj: Any) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def _named(obj: dict[str, Any]) -> bytes:
    kind: str = obj["type"]
    return b"event: " + kind.encode() + b"\n" + _data(obj)


def stream_events(api: Api, chunks: int, include_usage: bool = True) -> list[bytes]:
    """The SSE events of a streamed answer with `chunks` content deltas."""
    if api == "chat":
        return _chat_events(chunks, include_usage)
    if api == "responses":
        return _responses_events(chunks)
    return _messages_events(chunks)


def _chat_events(chunks: int, include_usage: bool) -> list[bytes]:
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1770000000}
    base["model"] = MODEL

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return _data({**base, "choices": [choice]})

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": WORD}) for _ in range(chunks)]
    events.append(chunk({}, "stop"))
    if include_usage:
        usage = {
            "prompt_tokens": INPUT_TOKENS,
            "completion_tokens": chunks,
            "total_tokens": INPUT_TOKENS + chunks,
        }
        events.append(_data({**base, "choices": [], "usage": usage}))
    events.append(b"data: [DONE]\n\n")
    return events


def _responses_events(chunks: int) -> list[bytes]:
    seq = iter(range(1_000_000))
    pending = {"id": "resp_bench", "object": "response", "created_at": 1770000000}
    pending.update({"status": "in_progress", "model": MODEL, "output": []})
    item = _response_message("")
    item["status"] = "in_progress"
    item["content"] = []
    part = {"type": "output_text", "text": "", "annotations": []}
    ids = {"item_id": "msg_bench", "output_index": 0, "content_index": 0}

    def ev(kind: str, **fields: Any) -> bytes:
        return _named({"type": kind, "sequence_number": next(seq), **fields})

    text = WORD * chunks
    done = {**pending, "status": "completed", "output": [_response_message(text)]}
    done["usage"] = _response_usage(chunks)
    return [
        ev("response.created", response=pending),
        ev("response.in_progress", response=pending),
        ev("response.output_item.added", output_index=0, item=item),
        ev("response.content_part.added", part=part, **ids),
        *[ev("response.output_text.delta", delta=WORD, **ids) for _ in range(chunks)],
        ev("response.output_text.done", text=text, **ids),
        ev("response.content_part.done", part={**part, "text": text}, **ids),
        ev("response.output_item.done", output_index=0, item=_response_message(text)),
        ev("response.completed", response=done),
    ]


def _messages_events(chunks: int) -> list[bytes]:
    start: dict[str, Any] = {
        "id": "msg_bench",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": INPUT_TOKENS, "output_tokens": 1},
    }
    delta = {"type": "content_block_delta", "index": 0}
    delta["delta"] = {"type": "text_delta", "text": WORD}
    return [
        _named({"type": "message_start", "message": start}),
        _named(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            }
        ),
        _named({"type": "ping"}),
        *[_named(delta) for _ in range(chunks)],
        _named({"type": "content_block_stop", "index": 0}),
        _named(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": chunks},
            }
        ),
        _named({"type": "message_stop"}),
    ]


def chunked(frame: bytes) -> bytes:
    """One frame in HTTP/1.1 chunked transfer coding."""
    return b"%x\r\n%s\r\n" % (len(frame), frame)


LAST_CHUNK = b"0\r\n\r\n"
