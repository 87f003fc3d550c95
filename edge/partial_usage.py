"""What a stream cut before the provider reported its usage is charged: never nothing."""

from __future__ import annotations

import math
from dataclasses import replace

from edge.context import RequestContext
from edge.usage import Usage
from policies.quota import Rules

_BYTES_PER_TOKEN = Rules().bytes_per_token  # the estimator's ratio in every shipped plan


def charge_cut_stream(ctx: RequestContext) -> None:
    """For a stream that ended without its final usage (the client left, the provider broke
    off): the input as estimated from what was sent unless the provider already reported it, and at
    least one output token per event relayed. The provider bills the work done; so do we."""
    if ctx.reservation is None:
        return
    usage = ctx.usage or Usage()
    # The body and a chained transcript, as the admission estimate counts them.
    sent = len(ctx.body or b"") + ctx.history_bytes
    estimated_input = math.ceil(sent / _BYTES_PER_TOKEN)
    ctx.usage = replace(
        usage,
        input_tokens=usage.input_tokens or estimated_input,
        output_tokens=max(usage.output_tokens, ctx.stream_events),
    )
