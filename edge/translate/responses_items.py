"""Responses items (input and output) to and from neutral items, and the item JSON we emit."""

from __future__ import annotations

from typing import Any

from edge.request_limits import MAX_ITEMS, MAX_PARTS, capped, too_long
from edge.translate import neutral as n
from edge.translate.common import invalid, new_id, split_data_url, unsupported

API = "by the Responses API for this model"
# Output items of provider-hosted tools: kept in stored transcripts, skipped when translating.
_HOSTED_CALLS = ("_call", "_call_output", "mcp_list_tools", "mcp_approval_request")
_ID_PREFIX = {
    "message": "msg_",
    "function_call": "fc_",
    "function_call_output": "fco_",
    "reasoning": "rs_",
}


def _text_part(text: str, role: str) -> dict[str, Any]:
    if role == "assistant":
        return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    return {"type": "input_text", "text": text}


def normalize_items(raw: Any, where: str = "input") -> list[dict[str, Any]]:
    """Client input (a string or items) as typed items with ids, as `input_items` lists them."""
    if isinstance(raw, str):
        raw = [{"role": "user", "content": raw}]
    if not isinstance(raw, list):
        raise invalid(where, "a string or an array of input items")
    out: list[dict[str, Any]] = []
    for i, item in enumerate(capped(raw, where, MAX_ITEMS)):
        if not isinstance(item, dict):
            raise invalid(f"{where}[{i}]", "an input item object")
        kind = item.get("type") or ("message" if "role" in item else None)
        if not isinstance(kind, str):
            raise invalid(f"{where}[{i}].type", "an item type")
        item = {**item, "type": kind}
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "system", "developer", "assistant"):
                raise invalid(f"{where}[{i}].role", "one of user, system, developer, assistant")
            content = item.get("content")
            if isinstance(content, str):
                item["content"] = [_text_part(content, role)]
            elif not isinstance(content, list):
                raise invalid(f"{where}[{i}].content", "a string or an array of content parts")
            else:
                capped(content, f"{where}[{i}].content", MAX_PARTS)
            item.setdefault("status", "completed")
        item.setdefault("id", new_id(_ID_PREFIX.get(kind, "item_")))
        out.append(item)
    return out


def _image(part: dict[str, Any], at: str) -> n.ImagePart:
    if part.get("file_id"):
        raise unsupported("Uploaded file ids ('file_id')", "through this gateway", at)
    url = part.get("image_url")
    if not isinstance(url, str):
        raise invalid(f"{at}.image_url", "a URL or a base64 data: URL")
    data = split_data_url(url)
    detail = part.get("detail")
    if data:
        return n.ImagePart(data=data[1], media_type=data[0], detail=detail)
    return n.ImagePart(url=url, detail=detail)


def _file(part: dict[str, Any], at: str) -> n.FilePart:
    if part.get("file_id"):
        raise unsupported("Uploaded file ids ('file_id')", "through this gateway", at)
    name = part.get("filename")
    if isinstance(part.get("file_url"), str):
        return n.FilePart(url=part["file_url"], filename=name)
    data = split_data_url(str(part.get("file_data", "")))
    if data is None:
        raise invalid(f"{at}.file_data", "a base64 data: URL")
    return n.FilePart(data=data[1], media_type=data[0], filename=name)


def _parts(content: list[Any], at: str) -> tuple[list[n.Part], str | None]:
    parts: list[n.Part] = []
    refusal: list[str] = []
    for j, part in enumerate(capped(content, at, MAX_PARTS)):
        where = f"{at}[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text", "summary_text", "reasoning_text"):
            text = part.get("text")
            if not isinstance(text, str):
                raise invalid(f"{where}.text", "a string")
            parts.append(n.TextPart(text))
        elif kind == "refusal":
            refusal.append(str(part.get("refusal", "")))
        elif kind == "input_image":
            parts.append(_image(part, where))
        elif kind == "input_file":
            parts.append(_file(part, where))
        else:
            raise unsupported(f"Content part type {kind!r}", API, where)
    return parts, "".join(refusal) or None


def _output(raw: Any, at: str) -> str | list[n.Part]:
    if isinstance(raw, str):
        return raw
    if not isinstance(raw, list):
        raise invalid(at, "a string or an array of content parts")
    parts, _ = _parts(raw, at)
    if all(isinstance(p, n.TextPart) for p in parts):
        return "".join(p.text for p in parts if isinstance(p, n.TextPart))
    return parts


def _texts(raw: Any, at: str) -> list[str]:
    if not isinstance(raw, list):
        return []
    parts = capped(raw, at, MAX_PARTS)
    return [p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)]


def to_neutral(item: dict[str, Any], at: str) -> n.Item | None:
    """One typed item as a neutral item; None for hosted-tool items a translation cannot carry."""
    kind = item["type"]
    if kind == "message":
        parts, refusal = _parts(item["content"], f"{at}.content")
        return n.Message(role=item["role"], parts=parts, refusal=refusal, id=item.get("id"))
    if kind == "function_call":
        name, call_id = item.get("name"), item.get("call_id")
        if not isinstance(name, str) or not isinstance(call_id, str):
            raise invalid(f"{at}", "a function_call with 'name' and 'call_id'")
        args = item.get("arguments")
        return n.ToolCall(
            call_id=call_id,
            name=name,
            arguments=args if isinstance(args, str) and args else "{}",
            id=item.get("id"),
        )
    if kind == "function_call_output":
        call_id = item.get("call_id")
        if not isinstance(call_id, str):
            raise invalid(f"{at}.call_id", "a string")
        return n.ToolResult(call_id=call_id, output=_output(item.get("output"), f"{at}.output"))
    if kind == "reasoning":
        encrypted = item.get("encrypted_content")
        if encrypted is not None and not isinstance(encrypted, str):
            raise invalid(f"{at}.encrypted_content", "a string")
        return n.Reasoning(
            text="".join(_texts(item.get("content"), f"{at}.content")),
            summary=_texts(item.get("summary"), f"{at}.summary"),
            encrypted=encrypted,
            id=item.get("id"),
        )
    if kind.endswith(_HOSTED_CALLS):
        return None
    if kind == "item_reference":
        raise unsupported("'item_reference' input items", API, at)
    raise unsupported(f"Input item type {kind!r}", API, at)


def items_to_neutral(items: list[dict[str, Any]], where: str = "input") -> list[n.Item]:
    """Typed items as neutral items; 400 past MAX_ITEMS, a chained transcript included."""
    if len(items) > MAX_ITEMS:  # the request's own items were capped: a chain made it longer
        counting = " counting the stored transcript of 'previous_response_id'"
        raise too_long(where, MAX_ITEMS, len(items), counting)
    out: list[n.Item] = []
    for i, item in enumerate(items):
        converted = to_neutral(item, f"{where}[{i}]")
        if converted is not None:
            out.append(converted)
    return out


# Items we emit ---------------------------------------------------------------------------


def message_item(
    item_id: str, content: list[dict[str, Any]], status: str = "completed"
) -> dict[str, Any]:
    """An assistant output message."""
    return {
        "type": "message",
        "id": item_id,
        "status": status,
        "role": "assistant",
        "content": content,
    }


def function_call_item(
    item_id: str, call_id: str, name: str, arguments: str, status: str = "completed"
) -> dict[str, Any]:
    """A function call the model made."""
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def reasoning_item(
    item_id: str,
    text: str,
    summary: list[str],
    encrypted: str | None = None,
    status: str = "completed",
) -> dict[str, Any]:
    """A reasoning item: raw reasoning as `reasoning_text` content, plus any summary."""
    return {
        "type": "reasoning",
        "id": item_id,
        "status": status,
        "summary": [{"type": "summary_text", "text": s} for s in summary],
        "content": [{"type": "reasoning_text", "text": text}] if text else [],
        "encrypted_content": encrypted,
    }


def output_items(items: list[n.Item]) -> list[dict[str, Any]]:
    """A whole neutral answer as output items."""
    out: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, n.Message):
            content: list[dict[str, Any]] = []
            if item.text or not item.refusal:
                content.append(_text_part(item.text, "assistant"))
            if item.refusal:
                content.append({"type": "refusal", "refusal": item.refusal})
            out.append(message_item(item.id or new_id("msg_"), content))
        elif isinstance(item, n.ToolCall):
            out.append(
                function_call_item(
                    item.id or new_id("fc_"), item.call_id, item.name, item.arguments
                )
            )
        elif isinstance(item, n.Reasoning):
            out.append(
                reasoning_item(item.id or new_id("rs_"), item.text, item.summary, item.encrypted)
            )
    return out


def _input_part(part: n.Part, role: str) -> dict[str, Any]:
    if isinstance(part, n.TextPart):
        return _text_part(part.text, role)
    if isinstance(part, n.ImagePart):
        url = part.url or f"data:{part.media_type or 'image/png'};base64,{part.data}"
        return {"type": "input_image", "image_url": url, "detail": part.detail or "auto"}
    if part.url:
        return {"type": "input_file", "file_url": part.url, "filename": part.filename}
    data = f"data:{part.media_type or 'application/pdf'};base64,{part.data}"
    return {"type": "input_file", "file_data": data, "filename": part.filename or "file"}


def input_items(items: list[n.Item]) -> list[dict[str, Any]]:
    """Neutral items as Responses input items for a provider call."""
    out: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, n.Message):
            content = [_input_part(p, item.role) for p in item.parts]
            if item.refusal:
                content.append({"type": "refusal", "refusal": item.refusal})
            out.append({"type": "message", "role": item.role, "content": content})
        elif isinstance(item, n.ToolCall):
            out.append(
                {
                    "type": "function_call",
                    "call_id": item.call_id,
                    "name": item.name,
                    "arguments": item.arguments,
                }
            )
        elif isinstance(item, n.ToolResult):
            output: Any = item.output
            if not isinstance(output, str):
                output = [_input_part(p, "user") for p in output]
            out.append({"type": "function_call_output", "call_id": item.call_id, "output": output})
        elif item.encrypted:
            # Reasoning is only useful to the provider with its encrypted form; plain text from
            # another provider cannot be replayed as reasoning.
            out.append(
                {
                    "type": "reasoning",
                    "id": item.id or new_id("rs_"),
                    "summary": [{"type": "summary_text", "text": s} for s in item.summary],
                    "encrypted_content": item.encrypted,
                }
            )
    return out
