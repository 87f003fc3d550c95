"""The Responses API routes, mounted under each OpenAI-style prefix."""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from edge.handlers import responses, responses_read


def setup_responses(app: web.Application, prefixes: Iterable[str]) -> None:
    """Register create, retrieve (and stream), delete, input items and cancel."""
    for prefix in prefixes:
        base = f"{prefix}/responses"
        app.router.add_post(base, responses.create_response)
        app.router.add_get(f"{base}/{{response_id}}", responses_read.get_response)
        app.router.add_delete(f"{base}/{{response_id}}", responses_read.delete_response)
        app.router.add_get(f"{base}/{{response_id}}/input_items", responses_read.list_input_items)
        app.router.add_post(f"{base}/{{response_id}}/cancel", responses_read.cancel_response)
