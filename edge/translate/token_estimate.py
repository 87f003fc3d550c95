"""The local token estimate, for what no provider counts: token counting on models whose provider
has no counting endpoint (OpenAI, OpenAI-compatible servers), and the input of Gemini
embeddings, whose answer reports no usage.

The rule, as the README documents it: one token per four bytes of UTF-8 text (OpenAI's rule of
thumb for English) in the messages, tool calls and results, reasoning, tool definitions and
schema, plus three tokens per message (its role and framing) and three to open the reply, and
765 tokens per image or file (OpenAI's count for a 1024x1024 image at high detail). It is an
estimate: a provider's tokenizer may count a tenth more or less on prose, more on code or
non-Latin scripts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import orjson

from edge.translate import neutral as n

BYTES_PER_TOKEN = 4
PER_MESSAGE = 3
REPLY_PRIMING = 3
MEDIA_TOKENS = 765


def text_tokens(text: str) -> int:
    """Tokens of one text: a quarter of its UTF-8 bytes, rounded up."""
    return math.ceil(len(text.encode("utf-8", "surrogatepass")) / BYTES_PER_TOKEN)


def texts_tokens(texts: Iterable[str]) -> int:
    """Tokens of several texts, each counted on its own (as each is embedded on its own)."""
    return sum(text_tokens(text) for text in texts)


def _parts(parts: Iterable[n.Part]) -> int:
    total = 0
    for part in parts:
        total += text_tokens(part.text) if isinstance(part, n.TextPart) else MEDIA_TOKENS
    return total


def _item(item: n.Item) -> int:
    if isinstance(item, n.Message):
        return _parts(item.parts) + text_tokens(item.refusal or "")
    if isinstance(item, n.ToolCall):
        return text_tokens(item.name) + text_tokens(item.arguments)
    if isinstance(item, n.ToolResult):
        output = item.output
        return text_tokens(output) if isinstance(output, str) else _parts(output)
    return text_tokens(item.text) + texts_tokens(item.summary)


def request_tokens(req: n.Request) -> int:
    """The estimated input tokens of a generation request."""
    total = REPLY_PRIMING
    for item in req.items:
        total += PER_MESSAGE + _item(item)
    for tool in req.tools:
        schema = orjson.dumps(tool.parameters).decode() if tool.parameters else ""
        total += text_tokens(tool.name) + text_tokens(tool.description or "") + text_tokens(schema)
    fmt = req.response_format
    if fmt is not None and fmt.schema is not None:
        total += text_tokens(orjson.dumps(fmt.schema).decode())
    return total
