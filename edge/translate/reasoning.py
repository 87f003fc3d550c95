"""Reasoning effort levels and thinking-token budgets, mapped both ways.

OpenAI-style APIs name an effort; Anthropic and Gemini 2.5 take a token budget; Gemini 3 takes
a level. One table keeps every pair consistent.
"""

from __future__ import annotations

from edge.translate import neutral as n

# Budgets per effort (Anthropic's minimum budget is 1024 tokens).
BUDGETS: dict[str, int] = {
    "minimal": 1024,
    "low": 2048,
    "medium": 8192,
    "high": 16384,
    "xhigh": 32768,
}
EFFORTS: tuple[n.Effort, ...] = ("none", "minimal", "low", "medium", "high", "xhigh")


def effort_for_budget(budget: int) -> n.Effort:
    """The smallest effort whose budget covers `budget` (0 means no reasoning)."""
    if budget <= 0:
        return "none"
    levels: tuple[n.Effort, ...] = ("minimal", "low", "medium", "high")
    for effort in levels:
        if budget <= BUDGETS[effort]:
            return effort
    return "xhigh"


def budget_of(config: n.ReasoningConfig) -> int:
    """The token budget a reasoning request asks for (0: reasoning off)."""
    if config.budget_tokens is not None:
        return config.budget_tokens
    if config.effort is None:
        return BUDGETS["medium"]
    return BUDGETS.get(config.effort, 0)


def effort_of(config: n.ReasoningConfig) -> n.Effort:
    """The effort a reasoning request asks for."""
    if config.effort is not None:
        return config.effort
    if config.budget_tokens is not None:
        return effort_for_budget(config.budget_tokens)
    return "medium"
