"""Provider error bodies become our errors: right status, useful message, nothing leaked."""

from __future__ import annotations

import math
import re
from contextvars import ContextVar
from typing import Any

import orjson

from edge.errors import GatewayError

UPSTREAM_FAILED = "The upstream provider returned an error. Retry the request."
UPSTREAM_AUTH = "The upstream provider rejected the gateway's credentials."
TIMED_OUT = "The upstream provider did not answer in time."
# Secrets and internal details a provider may echo back in a message.
_SCRUB = (
    (re.compile(r"\b(sk|pk|rk|sess|ek)[-_][A-Za-z0-9_*\-]{6,}"), "[redacted]"),
    (re.compile(r"\bAIza[0-9A-Za-z_\-]{20,}"), "[redacted]"),
    (re.compile(r"\borg-[A-Za-z0-9]{6,}"), "[organization]"),
    (re.compile(r"\bhttps?://[^\s\"'<>]+"), "[url]"),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"), "[address]"),
)
_PASS_STATUSES = frozenset({400, 404, 409, 413, 415, 422, 429})
# The configured secrets (provider keys and tokens, whatever their format) of the gateway this
# task serves: `edge.connection` sets them for every connection and background task it starts.
CONFIGURED_SECRETS: ContextVar[tuple[str, ...]] = ContextVar("edge.secrets", default=())
# An echo of a secret's first this-many characters (a truncated or masked key) counts as the
# secret: the rest of that word is removed with it.
SECRET_PREFIX = 12
MESSAGE_LIMIT = 2000
_WORD_REST = r"[^\s\"'<>,;]*"


def _without_secrets(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "[redacted]")
        head = secret[:SECRET_PREFIX]
        if len(secret) > SECRET_PREFIX and head in text:
            text = re.sub(re.escape(head) + _WORD_REST, "[redacted]", text)
    return text


def holds_secret(text: str) -> bool:
    """Whether the text holds a configured secret, whole or its start."""
    return any(s in text or s[:SECRET_PREFIX] in text for s in CONFIGURED_SECRETS.get())


def scrub(message: str) -> str:
    """Remove the configured secrets, other keys, URLs and addresses from a provider's message."""
    # Bounded first (with room for a secret cut at the end), so the work stays small.
    message = _without_secrets(message[: MESSAGE_LIMIT * 2], CONFIGURED_SECRETS.get())
    for pattern, replacement in _SCRUB:
        message = pattern.sub(replacement, message)
    return message[:MESSAGE_LIMIT]


def _clean(value: str | None) -> str | None:
    """A provider's code or param, or None when it holds anything to scrub."""
    return value if value is None or scrub(value) == value else None


def _fields(body: Any) -> tuple[str | None, str | None, str | None, Any]:
    """(message, code, param, details) from OpenAI, Anthropic or Google error bodies."""
    if isinstance(body, list) and body:
        body = body[0]  # Gemini streams errors as a one-element array
    if not isinstance(body, dict):
        return None, None, None, None
    err = body.get("error")
    if isinstance(err, dict):
        message = err.get("message")
        code = err.get("code") if isinstance(err.get("code"), str) else None
        code = code or (err.get("status") if isinstance(err.get("status"), str) else None)
        code = code or (err.get("type") if isinstance(err.get("type"), str) else None)
        param = err.get("param") if isinstance(err.get("param"), str) else None
        return (message if isinstance(message, str) else None), code, param, err.get("details")
    if isinstance(err, str):
        return err, None, None, None
    message = body.get("message")
    return (message if isinstance(message, str) else None), None, None, None


def _retry_info(details: Any) -> str | None:
    """Google's RetryInfo delay ("12.5s") as whole seconds for Retry-After."""
    if not isinstance(details, list):
        return None
    for detail in details:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("RetryInfo"):
            delay = detail.get("retryDelay")
            if isinstance(delay, str) and delay.endswith("s"):
                try:
                    return str(max(1, math.ceil(float(delay[:-1]))))
                except ValueError:
                    return None
    return None


def body_retry_after(status: int, raw: bytes, forwarded: list[tuple[str, str]]) -> str | None:
    """A Retry-After for a 429 whose delay is only in the body (Google's RetryInfo)."""
    if status != 429 or any(k.lower() == "retry-after" for k, _ in forwarded):
        return None
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return _retry_info(_fields(body)[3])


def relayable(status: int, raw: bytes) -> bool:
    """Whether a same-API error body may reach the client byte for byte: a client error whose
    message holds nothing to scrub."""
    if status not in _PASS_STATUSES:
        return False
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    # A secret anywhere in the body (any field, any escaping) keeps it from passing as is.
    if holds_secret(raw.decode("utf-8", "replace")) or holds_secret(orjson.dumps(body).decode()):
        return False
    message, _, _, _ = _fields(body)
    return message is not None and scrub(message) == message


def upstream_error(status: int, raw: bytes, forwarded: list[tuple[str, str]]) -> GatewayError:
    """The error to show the client for an upstream error response."""
    try:
        body = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        body = None
    message, code, param, details = _fields(body)
    code, param = _clean(code), _clean(param)
    headers = dict(forwarded)
    if status in (401, 403):
        return GatewayError(502, UPSTREAM_AUTH, code="upstream_auth_failed", headers=headers)
    if status in (408, 504):
        return GatewayError(504, TIMED_OUT, code="upstream_timeout", headers=headers)
    if status in _PASS_STATUSES:
        if status == 429 and not any(k.lower() == "retry-after" for k in headers):
            delay = _retry_info(details)
            if delay:
                headers["Retry-After"] = delay
        return GatewayError(
            status,
            scrub(message) if message else f"The upstream provider answered {status}.",
            code=code if status != 429 else (code or "rate_limit_exceeded"),
            param=param,
            headers=headers,
        )
    if 400 <= status < 500:
        return GatewayError(
            400, scrub(message) if message else UPSTREAM_FAILED, code=code, headers=headers
        )
    return GatewayError(502, UPSTREAM_FAILED, code="upstream_error", headers=headers)
