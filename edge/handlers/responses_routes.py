"""The Responses API routes, mounted under each OpenAI-style prefix."""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from edge.handlers import responses, responses_read
from edge.route_table import OPENAI_READ, RESPONSES, declare


def setup_responses(app: web.Application, prefixes: Iterable[str]) -> None:
    """Register create, retrieve (and stream), delete, input items and cancel."""
    for prefix in prefixes:
        base = f"{prefix}/responses"
        one = f"{base}/{{response_id}}"
        declare(app, "POST", base, responses.create_response, RESPONSES)
        declare(app, "GET", one, responses_read.get_response, OPENAI_READ)
        declare(app, "DELETE", one, responses_read.delete_response, OPENAI_READ)
        declare(app, "GET", f"{one}/input_items", responses_read.list_input_items, OPENAI_READ)
        declare(app, "POST", f"{one}/cancel", responses_read.cancel_response, OPENAI_READ)
