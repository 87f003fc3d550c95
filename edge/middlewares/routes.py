"""What kind of route a path is: public, administrative, or inference."""

from __future__ import annotations

from typing import Literal

RouteKind = Literal["public", "admin", "inference"]
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/admin/v1/openapi.json"})


def route_kind(path: str) -> RouteKind:
    """Classify a request path."""
    if path in PUBLIC_PATHS:
        return "public"
    if path.startswith("/admin/"):
        return "admin"
    return "inference"
