"""Token usage as the quotas see it, whatever API reported it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Usage:
    """Tokens of one call."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_tokens: int = 0

    @property
    def total(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens


def _int(obj: Any, *path: str) -> int:
    for name in path:
        if not isinstance(obj, dict):
            return 0
        obj = obj.get(name)
    return obj if isinstance(obj, int) and not isinstance(obj, bool) else 0


def from_openai_chat(usage: Any) -> Usage | None:
    """Chat Completions `usage`."""
    if not isinstance(usage, dict):
        return None
    return Usage(
        input_tokens=_int(usage, "prompt_tokens"),
        output_tokens=_int(usage, "completion_tokens"),
        cached_tokens=_int(usage, "prompt_tokens_details", "cached_tokens"),
        reasoning_tokens=_int(usage, "completion_tokens_details", "reasoning_tokens"),
    )


def from_openai_responses(usage: Any) -> Usage | None:
    """Responses API `usage`."""
    if not isinstance(usage, dict):
        return None
    return Usage(
        input_tokens=_int(usage, "input_tokens"),
        output_tokens=_int(usage, "output_tokens"),
        cached_tokens=_int(usage, "input_tokens_details", "cached_tokens"),
        reasoning_tokens=_int(usage, "output_tokens_details", "reasoning_tokens"),
    )


def from_anthropic(usage: Any) -> Usage | None:
    """Anthropic Messages `usage`: input excludes cache reads and writes, so they are added."""
    if not isinstance(usage, dict):
        return None
    cached = _int(usage, "cache_read_input_tokens")
    written = _int(usage, "cache_creation_input_tokens")
    return Usage(
        input_tokens=_int(usage, "input_tokens") + cached + written,
        output_tokens=_int(usage, "output_tokens"),
        cached_tokens=cached,
        cache_write_tokens=written,
        reasoning_tokens=_int(usage, "output_tokens_details", "thinking_tokens"),
    )


def from_gemini(usage: Any) -> Usage | None:
    """Gemini `usageMetadata`: thoughts are billed as output."""
    if not isinstance(usage, dict):
        return None
    thoughts = _int(usage, "thoughtsTokenCount")
    return Usage(
        input_tokens=_int(usage, "promptTokenCount"),
        output_tokens=_int(usage, "candidatesTokenCount") + thoughts,
        cached_tokens=_int(usage, "cachedContentTokenCount"),
        reasoning_tokens=thoughts,
    )
