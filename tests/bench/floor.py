"""The ceiling of an aiohttp relay on this machine: a bare proxy with none of the gateway's work.

An aiohttp server whose one handler POSTs the body to the fake upstream through one pooled
ClientSession and returns the answer (uvloop, no middleware, no auth, no Redis, no logs).
Whatever the gateway does on top of this is its own cost; this is what no optimization of the
gateway's code can go below while it is built on aiohttp's server and client.

    python -m tests.bench.floor            # c=1 and c=50, direct vs bare relay vs nothing else
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from tests.bench import procstat
from tests.bench.stack import FakeUpstreamProcess, wait_port
from tests.bench.targets import OPENAI_UPSTREAM, chat_body
from tests.bench.upstream import install_uvloop
from tests.bench.wrk import run_wrk
from tests.support.ports import free_port

SESSION: web.AppKey[aiohttp.ClientSession] = web.AppKey("session")
UPSTREAM: web.AppKey[str] = web.AppKey("upstream")


async def _relay(request: web.Request) -> web.Response:
    body = await request.read()
    session = request.app[SESSION]
    headers = {"Content-Type": "application/json", "Authorization": "Bearer x"}
    async with session.post(request.app[UPSTREAM] + request.path, data=body, headers=headers) as up:
        data = await up.read()
        return web.Response(status=up.status, body=data, content_type="application/json")


async def _session(app: web.Application) -> AsyncIterator[None]:
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)
    app[SESSION] = aiohttp.ClientSession(connector=connector, auto_decompress=False)
    yield
    await app[SESSION].close()


def serve(port: int, upstream: str) -> None:
    """Run the bare relay (in its own process)."""
    install_uvloop()
    app = web.Application()
    app[UPSTREAM] = upstream
    app.cleanup_ctx.append(_session)
    app.router.add_post("/{tail:.*}", _relay)
    with contextlib.suppress(KeyboardInterrupt):
        web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def measure(seconds: float) -> None:
    """wrk at c=1 and c=50: straight to the upstream, then through the bare relay."""
    upstream = FakeUpstreamProcess().start()
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.bench.floor", "--serve", str(port), upstream.url]
    )
    try:
        wait_port(port, proc)
        body = chat_body(OPENAI_UPSTREAM, False)
        headers = {"Authorization": "Bearer x"}
        run_wrk(f"http://127.0.0.1:{port}/v1/chat/completions", headers, body, 50, 1)
        for conns in (1, 50):
            for label, url in (
                ("direct", f"{upstream.url}/v1/chat/completions"),
                ("bare aiohttp relay", f"http://127.0.0.1:{port}/v1/chat/completions"),
            ):
                pids = [proc.pid] if label != "direct" else []
                cpu0 = procstat.cpu_seconds(pids)
                res = run_wrk(url, headers, body, conns, seconds)
                cpu = (procstat.cpu_seconds(pids) - cpu0) * 1000 / max(1, res.requests)
                print(
                    f"c={conns:<3} {label:<20} {res.rps:>9,.0f} req/s  p50 {res.p50 * 1000:.2f} ms"
                    f"  p99 {res.p99 * 1000:.2f} ms"
                    + (f"  relay CPU {cpu:.3f} ms/req" if pids else "")
                )
    finally:
        proc.terminate()
        proc.wait()
        upstream.stop()


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--serve", nargs=2, metavar=("PORT", "UPSTREAM"), help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    if args.serve:
        serve(int(args.serve[0]), args.serve[1])
    else:
        measure(args.seconds)


if __name__ == "__main__":
    main()
