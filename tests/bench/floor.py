"""The floor of an aiohttp gateway: a bare relay with none of the gateway's work.

An aiohttp server whose one handler POSTs the body to the fake upstream through one pooled
ClientSession and returns the answer, relaying a streamed answer chunk by chunk as it comes
(uvloop, no middleware, no auth, no Redis, no logs). Whatever the gateway does on top of this
is its own cost; this is what no optimization of the gateway's code goes below while it is
built on aiohttp's server and client. `make bench` measures it beside the gateway.

    python -m tests.bench.floor --port 9001 --upstream http://127.0.0.1:9000
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from tests.bench.upstream import install_uvloop

SESSION: web.AppKey[aiohttp.ClientSession] = web.AppKey("session")
UPSTREAM: web.AppKey[str] = web.AppKey("upstream")
HEADERS = {"Content-Type": "application/json", "Authorization": "Bearer x"}


async def _relay(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    session = request.app[SESSION]
    async with session.post(request.app[UPSTREAM] + request.path, data=body, headers=HEADERS) as up:
        kind = up.headers.get("Content-Type", "application/json")
        if not kind.startswith("text/event-stream"):
            data = await up.read()
            return web.Response(status=up.status, body=data, headers={"Content-Type": kind})
        resp = web.StreamResponse(status=up.status, headers={"Content-Type": kind})
        await resp.prepare(request)
        async for chunk in up.content.iter_any():
            await resp.write(chunk)
        await resp.write_eof()
        return resp


async def _session(app: web.Application) -> AsyncIterator[None]:
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)
    app[SESSION] = aiohttp.ClientSession(connector=connector, auto_decompress=False)
    yield
    await app[SESSION].close()


def serve(port: int, upstream: str) -> None:
    """Run the bare relay on 127.0.0.1:`port` until SIGTERM or SIGINT."""
    install_uvloop()
    app = web.Application()
    app[UPSTREAM] = upstream
    app.cleanup_ctx.append(_session)
    app.router.add_post("/{tail:.*}", _relay)
    with contextlib.suppress(KeyboardInterrupt):
        web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="base URL of the fake upstream")
    args = parser.parse_args()
    serve(args.port, args.upstream)


if __name__ == "__main__":
    main()
