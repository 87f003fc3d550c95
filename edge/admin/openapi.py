"""GET /admin/v1/openapi.json: the admin API's OpenAPI 3.1 document."""

from __future__ import annotations

from aiohttp import web

from edge.admin.openapi_doc import document
from edge.appkeys import QUOTA


async def serve_openapi(request: web.Request) -> web.Response:
    """The document (public: it holds no data)."""
    return web.json_response(document(request.app[QUOTA].plans.names()))
