"""The `edge` command: `edge serve` runs the gateway."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import sys
from pathlib import Path

from aiohttp import web

from edge.cli_admin import add_admin_parser, hoist_admin_flags
from edge.demo import bootstrap_demo, write_env_file
from edge.logs import configure
from edge.server import StartupError, serve
from edge.settings import (
    DEFAULT_METRICS_PORT,
    SAME_PORT,
    SettingsError,
    check_ports,
    load_settings,
    parse_metrics_port,
)
from edge.supervisor import supervise


def _run_loop() -> None:
    try:
        import uvloop  # optional extra: a faster event loop where available

        uvloop.install()
    except ImportError:
        pass


def _startup_failed(exc: StartupError) -> int:
    print(f"edge: startup failed: {exc}", file=sys.stderr)
    return 3


def _metrics_port(args: argparse.Namespace, configured: int | None) -> int | None:
    """The flag's metrics port, else the environment's; a demo is one port unless told."""
    if args.metrics_port is not None:
        return parse_metrics_port("--metrics-port", args.metrics_port)
    return None if args.demo else configured


def _serve(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
        settings = settings.with_overrides(
            host=args.host, port=args.port, metrics_port=_metrics_port(args, settings.metrics_port)
        )
        check_ports(settings)
    except SettingsError as exc:
        print(f"edge: configuration error: {exc}", file=sys.stderr)
        return 2
    if args.demo and settings.admin_token is None:
        settings = settings.with_overrides(admin_token=f"edge-admin-{secrets.token_urlsafe(24)}")
    configure(settings.log_level)
    if args.workers > 1:
        if args.demo or not settings.store_url.startswith(("redis", "unix")):
            print(
                "edge: --workers needs a shared store (EDGE_STORE_URL=redis://...) and no --demo: "
                "each worker would otherwise keep its own keys",
                file=sys.stderr,
            )
            return 2
        try:
            return supervise(settings, args.workers)
        except StartupError as exc:
            return _startup_failed(exc)
    base_url = f"http://{settings.host}:{settings.port}"

    async def announce(app: web.Application) -> None:
        creds = await bootstrap_demo(app)
        env_file = Path(args.env_file)
        write_env_file(env_file, base_url, creds)
        print(
            f"\nedge is listening on {base_url} (store: {settings.store_url})\n"
            f"  admin token: {creds.admin_token}\n"
            f"  invoke key:  {creds.invoke_key}\n"
            f"In another shell:  source {env_file}   (sets EDGE_URL, EDGE_KEY, EDGE_ADMIN_TOKEN)\n",
            flush=True,
        )

    _run_loop()
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(
                serve(settings, announce if args.demo else None, shared_port=args.shared_port)
            )
    except StartupError as exc:
        return _startup_failed(exc)
    return 0


def _positive(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command-line grammar."""
    parser = argparse.ArgumentParser(prog="edge", description="edge AI gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    serve_cmd = sub.add_parser("serve", help="run the gateway")
    serve_cmd.add_argument("--host", default="127.0.0.1")
    serve_cmd.add_argument("--port", type=int, default=8080)
    serve_cmd.add_argument(
        "--metrics-port",
        metavar="PORT",
        help="where /metrics, /healthz and /readyz are served (default: EDGE_METRICS_PORT, "
        f"else {DEFAULT_METRICS_PORT}; --demo: the client port); '{SAME_PORT}': /metrics on "
        "the client port",
    )
    serve_cmd.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="processes sharing the port (SO_REUSEPORT); needs a redis:// store",
    )
    # How `--workers N` tells its workers they are one group: only they bind with SO_REUSEPORT.
    serve_cmd.add_argument("--shared-port", action="store_true", help=argparse.SUPPRESS)
    serve_cmd.add_argument(
        "--demo",
        action="store_true",
        help="create a demo account and invoke key, and print them (for trying edge out)",
    )
    serve_cmd.add_argument(
        "--env-file", default=".edge/demo.env", help="where --demo writes its export lines"
    )
    serve_cmd.set_defaults(func=_serve)
    add_admin_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `edge` console script."""
    argv = hoist_admin_flags(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
