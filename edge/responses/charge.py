"""What a background run is charged when it ends without the provider's final usage.

The rule is the one foreground streams cut short follow (`edge.partial_usage`): the input as
estimated from what was sent upstream, unless the provider already reported it, and at least
one output token per event relayed, here per event the run logged from the provider's answer.
A run that logged nothing and heard no usage is charged nothing, as a foreground call that
failed before its first event.
"""

from __future__ import annotations

from typing import Any

import orjson

from edge.context import RequestContext
from edge.partial_usage import charge_cut_stream
from edge.quota.reservation import Reservation
from edge.store.responses import StoredResponse
from edge.usage import Usage


def sent_bytes(job: dict[str, Any]) -> bytes:
    """What a run sends upstream, as its input estimate reads it: the provider's own body when
    it is relayed, else the request's parameters and its whole transcript."""
    body = job.get("upstream_body")
    if body is not None:
        return orjson.dumps(body)
    return orjson.dumps([job.get("params"), job.get("items")])


def cut_usage(record: StoredResponse, reported: Usage | None, relayed: int) -> Usage | None:
    """The usage of a run cut short: `reported` is what the provider said so far, `relayed`
    the events the run logged from its answer; None when nothing came back at all."""
    job = record.job or {}
    raw = job.get("reservation")
    if not isinstance(raw, dict) or (reported is None and relayed == 0):
        return reported
    # The foreground rule reads a request's context: a run is given one with what it sent.
    ctx = RequestContext(
        request_id=record.id,
        shape="openai",
        body=sent_bytes(job),
        usage=reported,
        stream_events=relayed,
        reservation=Reservation.from_json(raw),
    )
    charge_cut_stream(ctx)
    return ctx.usage


def relayed_in_log(kinds: list[str], closing: int) -> int | None:
    """How many events the run's last attempt logged from the provider, given the types of the
    whole log (ending with the `closing` events that ended it); None when the log shows the
    run was not running when it ended (queued, never started or given back)."""
    began = None
    for index, kind in enumerate(kinds):
        if kind == "response.in_progress":
            began = index
        elif kind == "response.queued":
            began = None
    if began is None:
        return None
    return max(0, len(kinds) - began - 1 - closing)
