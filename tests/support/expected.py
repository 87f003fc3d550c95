"""What a recording says the answer is: text, tool calls, reasoning, usage, or an error.

Written independently of the gateway's decoders, straight from each provider's documented
format, so the table test compares the gateway against the recording and not against itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tests.support.readers import Usage
from tests.support.recordings import Recording

MALFORMED = ("duplicate-message-start", "spliced-message-start")


@dataclass
class Expected:
    """The answer a recording holds (or the error it is)."""

    kind: str = "ok"  # ok | error (a whole error body) | terminal (a stream that must fail)
    status: int = 200  # what the provider answered
    client_status: int = 200  # what the gateway answers (provider 5xx is our 502)
    text: str = ""
    reasoning: str = ""
    calls: list[tuple[str, Any]] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    retry_after: str | None = None


def _loads(text: str) -> Any:
    return json.loads(text) if text.strip() else {}


def error_status(body: dict[str, Any]) -> int:
    """The HTTP status a provider answers an error body with (as their docs list them)."""
    err = body["error"]
    if isinstance(err.get("code"), int):
        return int(err["code"])
    return {"invalid_request_error": 400, "insufficient_quota": 429}.get(err.get("type"), 500)


def _anthropic(rec: Recording) -> Expected:
    exp = Expected()
    if any(rec.name.startswith(m) for m in MALFORMED):
        return Expected(kind="terminal")
    if rec.streamed:
        usage: dict[str, Any] = {}
        blocks: dict[int, dict[str, Any]] = {}
        for event in rec.events():
            if event["type"] == "message_start":
                usage.update(event["message"]["usage"])
            elif event["type"] == "content_block_start":
                blocks[event["index"]] = dict(event["content_block"], partial="")
            elif event["type"] == "content_block_delta":
                block, delta = blocks[event["index"]], event["delta"]
                block["text"] = block.get("text", "") + delta.get("text", "")
                block["thinking"] = block.get("thinking", "") + delta.get("thinking", "")
                block["partial"] += delta.get("partial_json", "")
            elif event["type"] == "message_delta":
                usage.update({k: v for k, v in event["usage"].items() if v is not None})
        content = [blocks[i] for i in sorted(blocks)]
        for block in content:
            if block["type"] == "tool_use":
                block["input"] = _loads(block["partial"])
    else:
        body = rec.body()
        content, usage = body["content"], body["usage"]
    for block in content:
        if block["type"] == "text":
            exp.text += block["text"]
        elif block["type"] == "thinking":
            exp.reasoning += block["thinking"]
        elif block["type"] == "tool_use":
            exp.calls.append((block["name"], block["input"]))
    cached = usage.get("cache_read_input_tokens") or 0
    written = usage.get("cache_creation_input_tokens") or 0
    exp.usage = Usage(
        input=usage.get("input_tokens", 0) + cached + written,
        output=usage.get("output_tokens", 0),
        cached=cached,
    )
    return exp


def _gemini(rec: Recording) -> Expected:
    chunks = rec.events() if rec.streamed else [rec.body()]
    exp = Expected()
    for chunk in chunks:
        meta = chunk.get("usageMetadata") or {}
        if "promptTokenCount" in meta:
            thoughts = meta.get("thoughtsTokenCount", 0)
            exp.usage = Usage(
                input=meta["promptTokenCount"],
                output=meta.get("candidatesTokenCount", 0) + thoughts,
                cached=meta.get("cachedContentTokenCount", 0),
                reasoning=thoughts,
            )
        for candidate in chunk.get("candidates") or []:
            for part in candidate["content"].get("parts") or []:
                fc = part.get("functionCall")
                if part.get("thought"):
                    exp.reasoning += part.get("text", "")
                elif fc is not None and fc.get("name"):
                    exp.calls.append((fc["name"], dict(fc.get("args") or {})))
                elif fc is not None:
                    for arg in fc.get("partialArgs") or []:
                        key = arg["jsonPath"].removeprefix("$.")
                        args = exp.calls[-1][1]
                        args[key] = args.get(key, "") + arg.get("stringValue", "")
                else:
                    exp.text += part.get("text", "")
    return exp


def _chat(rec: Recording) -> Expected:
    exp = Expected()
    usage: dict[str, Any] = {}
    if rec.streamed:
        calls: dict[int, list[str]] = {}
        for chunk in rec.events():
            usage = chunk.get("usage") or usage
            for choice in chunk.get("choices") or []:
                delta = choice.get("delta") or {}
                exp.text += delta.get("content") or ""
                exp.reasoning += delta.get("reasoning_content") or ""
                for tc in delta.get("tool_calls") or []:
                    entry = calls.setdefault(tc["index"], ["", ""])
                    entry[0] += (tc.get("function") or {}).get("name") or ""
                    entry[1] += (tc.get("function") or {}).get("arguments") or ""
        exp.calls = [(name, _loads(args)) for name, args in calls.values()]
    else:
        body = rec.body()
        message = body["choices"][0]["message"]
        exp.text = message.get("content") or ""
        exp.reasoning = message.get("reasoning_content") or ""
        for tc in message.get("tool_calls") or []:
            exp.calls.append((tc["function"]["name"], _loads(tc["function"]["arguments"])))
        usage = body.get("usage") or {}
    exp.usage = Usage(
        input=usage.get("prompt_tokens", 0),
        output=usage.get("completion_tokens", 0),
        cached=(usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0),
        reasoning=(usage.get("completion_tokens_details") or {}).get("reasoning_tokens", 0),
    )
    return exp


def _cut_short(line: str) -> dict[str, Any]:
    """A JSON object, closing the braces a provider left off."""
    for missing in range(4):
        try:
            value: dict[str, Any] = json.loads(line + "}" * missing)
        except json.JSONDecodeError:
            continue
        return value
    raise AssertionError(f"unreadable recording line: {line[:80]}")


def _responses(rec: Recording) -> Expected:
    exp = Expected()
    final: dict[str, Any] | None = None
    if rec.streamed:
        # The answer is the first response to end (a recording may hold several streams one
        # after another); events cut short of their closing braces are read as far as they go.
        # Its items are the stream's own: some servers end with an empty `output`.
        done: list[dict[str, Any]] = []
        for line in rec.path.read_text().splitlines():
            event = _cut_short(line)
            if event["type"] == "response.output_item.done":
                done.append(event["item"])
            if event["type"] in ("response.completed", "response.incomplete"):
                final = {**event["response"], "output": done or event["response"]["output"]}
                break
            if event["type"] in ("response.failed", "error"):
                return Expected(kind="terminal")
        assert final is not None
    else:
        final = rec.body()
        if final.get("status") == "failed" or final.get("error"):
            return Expected(kind="error", status=200, client_status=502)
    for item in final.get("output") or []:
        if item["type"] == "message":
            exp.text += "".join(p.get("text", "") for p in item.get("content") or [])
        elif item["type"] == "function_call":
            exp.calls.append((item["name"], _loads(item["arguments"])))
        elif item["type"] == "reasoning":
            texts = item.get("content") or item.get("summary") or []
            exp.reasoning += "".join(t.get("text", "") for t in texts)
    usage = final.get("usage") or {}
    exp.usage = Usage(
        input=usage.get("input_tokens", 0),
        output=usage.get("output_tokens", 0),
        cached=(usage.get("input_tokens_details") or {}).get("cached_tokens", 0),
        reasoning=(usage.get("output_tokens_details") or {}).get("reasoning_tokens", 0),
    )
    return exp


def expected(rec: Recording) -> Expected:
    """The expected answer for a recording."""
    if not rec.streamed:
        body = rec.body()
        if "error" in body and body.get("object") != "response":
            status = error_status(body)
            exp = Expected(kind="error", status=status, client_status=min(status, 502))
            for detail in body["error"].get("details") or []:
                if detail.get("@type", "").endswith("RetryInfo"):
                    seconds = float(detail["retryDelay"].removesuffix("s"))
                    exp.retry_after = str(int(-(-seconds // 1)))
            return exp
    readers = {
        "anthropic": _anthropic,
        "gemini": _gemini,
        "openai-chat": _chat,
        "openai-responses": _responses,
    }
    return readers[rec.api](rec)
