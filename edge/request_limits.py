"""What one request may make the gateway parse and walk: how deeply a body may nest.

Every refusal is a 400 that names the cap.
"""

from __future__ import annotations

from edge.errors import GatewayError

# Levels of nesting in one body. Google's own JSON parser stops at 100 (protobuf's recursion
# limit); orjson writes at most 254, so every object made from a body can be written again.
MAX_DEPTH = 128


def too_deep() -> GatewayError:
    """The 400 for a body nested past MAX_DEPTH."""
    return GatewayError(
        400,
        f"Request body is nested more than {MAX_DEPTH} levels deep (the gateway's cap).",
        code="body_too_deep",
    )
