"""Multi-turn conversations in each client API, built from a previous answer as an SDK would,
and what the provider received, read back in neutral terms.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tests.support.readers import Answer

TOOL_OUTPUT = {"temperature": 7, "condition": "cloudy"}


def user_turn(api: str, text: str) -> list[dict[str, Any]]:
    """One user message, as a list of the API's history entries."""
    if api == "gemini":
        return [{"role": "user", "parts": [{"text": text}]}]
    return [{"role": "user", "content": text}]


def assistant_turn(api: str, answer: Answer) -> list[dict[str, Any]]:
    """The assistant's answer replayed as history, the way each SDK hands it back."""
    raw = answer.raw
    if api == "chat":
        message = dict(raw["choices"][0]["message"])
        return [{k: v for k, v in message.items() if v is not None}]
    if api == "messages":
        return [{"role": "assistant", "content": raw["content"]}]
    if api == "gemini":
        return [raw["candidates"][0]["content"]]
    return list(raw["output"])


def tool_results(api: str, answer: Answer) -> list[dict[str, Any]]:
    """The client's results for every call in an answer."""
    output = json.dumps(TOOL_OUTPUT)
    pairs = list(zip(answer.call_ids, answer.calls, strict=True))
    if api == "chat":
        return [{"role": "tool", "tool_call_id": cid, "content": output} for cid, _ in pairs]
    if api == "messages":
        blocks = [
            {"type": "tool_result", "tool_use_id": cid, "content": output} for cid, _ in pairs
        ]
        return [{"role": "user", "content": blocks}]
    if api == "gemini":
        parts = []
        for cid, (name, _) in pairs:
            response: dict[str, Any] = {"name": name, "response": TOOL_OUTPUT}
            if cid:
                response["id"] = cid
            parts.append({"functionResponse": response})
        return [{"role": "user", "parts": parts}]
    return [{"type": "function_call_output", "call_id": cid, "output": output} for cid, _ in pairs]


def body_with_history(api: str, base: dict[str, Any], history: list[dict[str, Any]]) -> None:
    """Put a history into a request body built by `request_for`."""
    if api == "gemini":
        base["contents"] = history
    elif api == "responses":
        base["input"] = history
    else:
        base["messages"] = history


@dataclass
class Seen:
    """A provider request in neutral terms."""

    calls: list[tuple[str, str, Any]] = field(default_factory=list)  # (id, name, arguments)
    results: list[tuple[str, Any]] = field(default_factory=list)  # (id or name, output)
    signatures: list[str] = field(default_factory=list)  # reasoning signatures sent back
    unsigned_thinking: int = 0  # Anthropic thinking blocks without a signature
    reasoning_texts: list[str] = field(default_factory=list)
    reasoning_config: Any = None


def _loads(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) and value.strip() else value


def seen_by(wire: str, body: dict[str, Any]) -> Seen:
    """What a provider request carries, whatever its wire API."""
    seen = Seen()
    if wire == "openai-chat":
        seen.reasoning_config = body.get("reasoning_effort")
        for message in body["messages"]:
            for call in message.get("tool_calls") or []:
                fn = call["function"]
                seen.calls.append((call["id"], fn["name"], _loads(fn["arguments"])))
            if message["role"] == "tool":
                seen.results.append((message["tool_call_id"], _loads(message["content"])))
            if message.get("reasoning_content"):
                seen.reasoning_texts.append(message["reasoning_content"])
    elif wire == "anthropic":
        seen.reasoning_config = body.get("thinking")
        for message in body["messages"]:
            for block in message["content"] if isinstance(message["content"], list) else []:
                if block["type"] == "tool_use":
                    seen.calls.append((block["id"], block["name"], block["input"]))
                elif block["type"] == "tool_result":
                    seen.results.append((block["tool_use_id"], _loads(block["content"])))
                elif block["type"] == "thinking":
                    if block.get("signature"):
                        seen.signatures.append(block["signature"])
                    else:
                        seen.unsigned_thinking += 1
    elif wire == "gemini":
        seen.reasoning_config = (body.get("generationConfig") or {}).get("thinkingConfig")
        for content in body["contents"]:
            for part in content["parts"]:
                if part.get("thoughtSignature"):
                    seen.signatures.append(part["thoughtSignature"])
                if "functionCall" in part:
                    fc = part["functionCall"]
                    seen.calls.append((fc.get("id", ""), fc["name"], fc.get("args") or {}))
                elif "functionResponse" in part:
                    fr = part["functionResponse"]
                    seen.results.append((fr.get("id") or fr["name"], fr["response"]))
                elif part.get("thought"):
                    seen.reasoning_texts.append(part.get("text", ""))
    else:
        seen.reasoning_config = body.get("reasoning")
        items = body["input"] if isinstance(body["input"], list) else []
        for item in items:
            if item.get("type") == "function_call":
                seen.calls.append((item["call_id"], item["name"], _loads(item["arguments"])))
            elif item.get("type") == "function_call_output":
                seen.results.append((item["call_id"], _loads(item["output"])))
            elif item.get("type") == "reasoning" and item.get("encrypted_content"):
                seen.signatures.append(item["encrypted_content"])
    return seen
