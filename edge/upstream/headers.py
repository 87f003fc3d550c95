"""Which upstream response headers reach the client unchanged."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from edge.upstream.errors import holds_secret

# `retry-after` also covers `retry-after-ms`.
_FORWARDED_PREFIXES = ("retry-after", "x-ratelimit-", "anthropic-ratelimit-")


def forwarded(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Rate-limit headers, byte-identical, in the upstream's order; never one that echoes a
    configured secret."""
    return [
        (k, v)
        for k, v in headers
        if k.lower().startswith(_FORWARDED_PREFIXES) and not holds_secret(v)
    ]


def items(headers: Mapping[str, str]) -> list[tuple[str, str]]:
    """A header mapping's items (multi-valued mappings yield every value)."""
    return list(headers.items())
