"""The complete Responses object: every field of the Open Responses spec, null where unknown."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edge.errors import GatewayError
from edge.translate.responses_request import ResponseParams
from edge.usage import Usage

STATUSES = ("queued", "in_progress", "completed", "failed", "cancelled", "incomplete")


def usage_json(usage: Usage) -> dict[str, Any]:
    """Usage in the Responses shape."""
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total,
    }


def error_json(err: GatewayError) -> dict[str, Any]:
    """The `error` member of a failed response."""
    return {"code": err.code or "server_error", "message": err.message}


@dataclass(slots=True)
class Shell:
    """What identifies one response and what it was asked to do; renders the whole object."""

    id: str
    model: str
    params: ResponseParams
    created_at: int
    background: bool = False
    previous_response_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # provider fields to keep (billing...)

    def render(
        self,
        status: str,
        output: list[dict[str, Any]] | None = None,
        usage: Usage | None = None,
        error: dict[str, Any] | None = None,
        incomplete: str | None = None,
        completed_at: int | None = None,
    ) -> dict[str, Any]:
        """The response object in a given state."""
        p = self.params
        text = {"verbosity": "medium", **p.text}
        return {
            **self.extra,
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "completed_at": completed_at,
            "status": status,
            "background": self.background,
            "error": error,
            "incomplete_details": {"reason": incomplete} if incomplete else None,
            "instructions": p.instructions,
            "max_output_tokens": p.max_output_tokens,
            "max_tool_calls": p.max_tool_calls,
            "model": self.model,
            "output": list(output or []),
            "parallel_tool_calls": p.parallel_tool_calls,
            "previous_response_id": self.previous_response_id,
            "prompt_cache_key": p.prompt_cache_key,
            "prompt_cache_retention": None,
            "reasoning": dict(p.reasoning),
            "safety_identifier": p.safety_identifier,
            "service_tier": p.service_tier or "default",
            "store": p.store,
            "temperature": 1.0 if p.temperature is None else p.temperature,
            "text": text,
            "tool_choice": p.tool_choice,
            "tools": list(p.tools),
            "top_logprobs": p.top_logprobs or 0,
            "top_p": 1.0 if p.top_p is None else p.top_p,
            "presence_penalty": p.presence_penalty or 0.0,
            "frequency_penalty": p.frequency_penalty or 0.0,
            "truncation": p.truncation,
            "usage": usage_json(usage) if usage is not None else None,
            "user": p.user,
            "metadata": dict(p.metadata),
            "conversation": None,
        }


def complete_object(shell: Shell, upstream: dict[str, Any]) -> dict[str, Any]:
    """A provider's response object with every field our shell knows filled in where missing."""
    base = shell.render(str(upstream.get("status") or "completed"))
    merged = {**base, **{k: v for k, v in upstream.items() if v is not None or k not in base}}
    merged["object"] = "response"
    return merged
