"""Generation settings only some providers take, carried in `Request.extra` by one name.

A setting the target provider has no equivalent for is refused with a 400 naming it, rather
than dropped: the caller asked for a behaviour the model cannot give.
"""

from __future__ import annotations

from typing import Any, Literal

from edge.translate import neutral as n
from edge.translate.common import unsupported

Wire = Literal["chat", "messages", "gemini"]
# neutral name -> its name on each provider wire (None: no equivalent)
_NAMES: dict[str, dict[Wire, str | None]] = {
    "top_k": {"chat": "top_k", "messages": "top_k", "gemini": "topK"},
    "seed": {"chat": "seed", "messages": None, "gemini": "seed"},
    "presence_penalty": {"chat": "presence_penalty", "messages": None, "gemini": "presencePenalty"},
    "frequency_penalty": {
        "chat": "frequency_penalty",
        "messages": None,
        "gemini": "frequencyPenalty",
    },
    "safety_settings": {"chat": None, "messages": None, "gemini": "safetySettings"},
}
_LABELS: dict[Wire, str] = {
    "chat": "by Chat Completions models",
    "messages": "by Anthropic models",
    "gemini": "by Gemini models",
}


def extras_for(req: n.Request, wire: Wire, refuse: tuple[str, ...] = ()) -> dict[str, Any]:
    """The provider-named settings of a request; `refuse` lists more the provider lacks."""
    out: dict[str, Any] = {}
    for name, names in _NAMES.items():
        value = req.extra.get(name)
        if value is None:
            continue
        target = names[wire]
        if target is None or name in refuse:
            raise unsupported(f"'{name}'", _LABELS[wire], name)
        out[target] = value
    return out
