"""Running one background response: call the provider, log every event, end it once.

Every event logged from the provider's answer is counted on the run's log, and the usage it
reports is noted as it comes, so a run that ends before its final usage is charged like a
foreground stream cut short (`edge.responses.charge`).

A model whose provider speaks Responses gets the provider's own events (re-addressed to our
response id); any other model goes through its adapter and the neutral Responses renderer.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
from aiohttp import web

from edge.appkeys import HTTP, SETTINGS
from edge.errors import GatewayError
from edge.quota.reservation import Reservation
from edge.responses.state import RunLog, failed_events
from edge.routing import Route, resolve_route
from edge.sse import SSEError, SSEParser
from edge.translate.adapters import adapter_for
from edge.translate.responses_object import Shell, complete_object
from edge.translate.responses_render import ResponsesEvents
from edge.translate.responses_request import ResponseParams, to_neutral_request
from edge.translate.responses_wire import LIFECYCLE, TERMINAL, event_type, members
from edge.translate.upstream import UpstreamContext
from edge.upstream.auth import upstream_headers
from edge.upstream.client import interrupted, open_upstream, read_error_body
from edge.upstream.endpoints import responses_url
from edge.upstream.errors import upstream_error
from edge.upstream.signing import CREDENTIALS
from edge.usage import from_openai_responses

CUT = (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, TimeoutError, SSEError)


def shell_of(record_response: dict[str, Any], job: dict[str, Any]) -> Shell:
    """The shell a background response was queued with."""
    return Shell(
        id=str(record_response["id"]),
        model=str(record_response["model"]),
        params=ResponseParams.from_json(job["params"]),
        created_at=int(record_response["created_at"]),
        background=True,
        previous_response_id=record_response.get("previous_response_id"),
    )


def admitted_of(run_log: RunLog) -> Reservation | None:
    """The reservation the run was admitted with, queued with its job."""
    held = (run_log.record.job or {}).get("reservation")
    return Reservation.from_json(held) if isinstance(held, dict) else None


def queued_route(route: Route, job: dict[str, Any]) -> Route:
    """The route of the deployment the run was queued for (its body was written for that
    deployment's provider and model name); the model's first while that one is still declared
    under another name, or for a job queued before deployments were recorded."""
    chosen = job.get("deployment")
    for choice in route.choices:
        if choice.deployment.name == chosen:
            return choice.route
    return route


async def run(app: web.Application, run_log: RunLog) -> None:
    """Run a claimed job to its terminal status (unless it is ended elsewhere first)."""
    record = run_log.record
    job = record.job or {}
    shell = shell_of(record.response, job)
    route = queued_route(resolve_route(app[SETTINGS].catalog, job.get("model"), "responses"), job)
    if job.get("upstream_body") is not None:
        await _passthrough(app, run_log, shell, route, job["upstream_body"])
    else:
        await _neutral(app, run_log, shell, route, job["items"])


async def _neutral(
    app: web.Application, run_log: RunLog, shell: Shell, route: Route, items: list[Any]
) -> None:
    settings = app[SETTINGS]
    up = UpstreamContext(
        app[HTTP],
        route,
        settings.timeouts,
        settings.upstream_body_limit,
        admitted_of(run_log),
        credentials=app[CREDENTIALS],
    )
    events = ResponsesEvents(shell, announce=False)
    req = to_neutral_request(shell.params, items, route.model.upstream, stream=True)
    final_usage = None
    try:
        async with adapter_for(route).stream(up, req) as call:
            async for event in call.events:
                logged = events.feed(event)
                run_log.reported = events.usage
                await run_log.emit(logged)
        closing, final_usage = events.finish(), events.usage
    except GatewayError as err:
        closing = events.fail(err)
    except CUT:
        closing = events.fail(interrupted())
    assert events.final is not None
    # Our own closing events are logged with the end, and not charged as the provider's.
    await run_log.end(closing, events.final, final_usage)


def _readdress(shell: Shell, kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """A provider event as our response's event: our id, flags and every field."""
    if kind in LIFECYCLE and isinstance(data.get("response"), dict):
        provider = {**data["response"], "id": shell.id, "background": True}
        provider["previous_response_id"] = shell.previous_response_id
        provider["store"] = True
        data = {**data, "response": complete_object(shell, provider)}
    return data


async def _passthrough(
    app: web.Application, run_log: RunLog, shell: Shell, route: Route, body: dict[str, Any]
) -> None:
    settings = app[SETTINGS]
    url = responses_url(route.provider)
    headers = upstream_headers(route.provider, {})
    items: dict[int, dict[str, Any]] = {}
    try:
        async with open_upstream(
            app[HTTP],
            url,
            orjson.dumps(body),
            headers,
            settings.timeouts,
            admitted=admitted_of(run_log),
        ) as upstream:
            if upstream.status >= 400:
                raw = await read_error_body(upstream)
                raise upstream_error(upstream.status, raw, [])
            parser = SSEParser()
            async for chunk in upstream.content.iter_any():
                batch: list[dict[str, Any]] = []
                for event in parser.feed(chunk):
                    kind, data = event_type(event), members(event.data)
                    if kind is None or data is None:
                        continue
                    data.setdefault("type", kind)
                    if kind in ("response.created", "response.queued", "response.in_progress"):
                        continue  # our own lifecycle events were logged when the run began
                    data = _readdress(shell, kind, data)
                    if kind == "response.output_item.done" and isinstance(data.get("item"), dict):
                        items[int(data.get("output_index") or 0)] = data["item"]
                    if kind in TERMINAL:
                        final = dict(data["response"])
                        if not final.get("output"):
                            final["output"] = [items[i] for i in sorted(items)]
                        await run_log.emit(batch)
                        usage = from_openai_responses(final.get("usage"))
                        await run_log.end([{**data, "response": final}], final, usage)
                        return
                    batch.append(data)
                await run_log.emit(batch)
            raise interrupted()
    except GatewayError as err:
        failure = err
    except CUT:
        failure = interrupted()
    snapshot = shell.render("in_progress", [items[i] for i in sorted(items)])
    closing, failed = failed_events(snapshot, failure)
    await run_log.end(closing, failed, None)
