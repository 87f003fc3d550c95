"""JSON logs: one line per request, never a secret or a prompt."""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any, TextIO

import orjson

from edge.context import RequestContext
from edge.errors import GatewayError
from policies.ratelimit import policy_of

QUOTA_DENIED = "REQUEST_LIMIT_EXCEEDED"

ACCESS = logging.getLogger("edge.access")


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        """Render a record with its structured extras."""
        data: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process,  # tells `--workers` processes apart
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            data.update(fields)
        request_id = getattr(record, "request_id", None)
        if request_id:
            data["request_id"] = request_id
        if record.exc_info:
            data["error"] = self.formatException(record.exc_info)
        return orjson.dumps(data, default=str).decode()


def configure(level: str) -> None:
    """Send every log line to stderr as JSON."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").disabled = True


def request_fields(ctx: RequestContext, method: str, route: str) -> dict[str, Any]:
    """The fields of a request's log line (route is the pattern, never the raw path)."""
    principal = ctx.principal
    usage = ctx.usage
    now = time.perf_counter()
    fields: dict[str, Any] = {
        "request_id": ctx.request_id,
        "method": method,
        "route": route,
        "status": ctx.status,
        "account": principal.account if principal else None,
        "key_id": principal.subject if principal and principal.kind == "key" else None,
        "branch": ctx.branch,
        "model": ctx.model,
        "provider": ctx.provider,
        "stream": ctx.stream,
        "input_tokens": usage.input_tokens if usage else None,
        "output_tokens": usage.output_tokens if usage else None,
        "latency_ms": round((now - ctx.started) * 1000, 3),
        "ttfb_ms": round((ctx.first_byte_at - ctx.started) * 1000, 3)
        if ctx.first_byte_at
        else None,
    }
    if ctx.trace_id is not None:
        fields["trace_id"] = ctx.trace_id
    if ctx.error is not None:
        fields |= why(ctx.error)
    if len(ctx.attempts) > 1:
        # A fallback: each model tried and what it answered, in order.
        fields["attempts"] = [f"{model}:{status or 'none'}" for model, status in ctx.attempts]
    return fields


def why(err: GatewayError) -> dict[str, Any]:
    """What a refused or failed request's line says of it: the error's code, and for a quota
    denial the limit that fired (`key-rpm`), its scope and its window."""
    out: dict[str, Any] = {"error": err.code or str(err.status)}
    if err.code != QUOTA_DENIED:
        return out
    found = policy_of(err.headers.get("RateLimit-Policy", ""))
    if found is None:
        out["limit"] = "blocked"  # a blocked account names no limit
        return out
    token, window = found
    out["limit"] = token
    out["limit_scope"] = token.partition("-")[0]
    out["limit_window_s"] = window
    return out


def _json_stream(logger: logging.Logger) -> tuple[logging.StreamHandler[TextIO], TextIO] | None:
    """The JSON stream handler a logger's records end up in, and its stream (None: another
    setup, such as a test capturing records, which then gets ordinary records)."""
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if isinstance(handler, logging.StreamHandler) and isinstance(
                handler.formatter, JsonFormatter
            ):
                return handler, handler.stream
        current = current.parent if current.propagate else None
    return None


def log_request(ctx: RequestContext, method: str, route: str) -> None:
    """Write the request's line, when info logging is on.

    The line JsonFormatter would write, dumped straight to its handler's stream: one line per
    request made no LogRecord, formatter call or `extra` merge worth their cost."""
    if not ACCESS.isEnabledFor(logging.INFO):
        return
    found = _json_stream(ACCESS)
    fields = request_fields(ctx, method, route)
    if found is None:
        ACCESS.info("request", extra={"fields": fields})
        return
    handler, stream = found
    line = {
        "ts": round(time.time(), 3),
        "level": "info",
        "logger": ACCESS.name,
        "msg": "request",
        "pid": os.getpid(),
        **fields,
    }
    text = orjson.dumps(line, default=str).decode() + "\n"
    handler.acquire()
    try:
        stream.write(text)
        stream.flush()
    finally:
        handler.release()
