"""Every error the gateway emits is made here, in the caller's API shape."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import orjson
from aiohttp import web

ApiShape = Literal["openai", "anthropic", "gemini"]

BODY_TOO_LARGE = "Request body exceeds 32 MiB. Reduce the size of your request."
# Google's error shape carries a code as an ErrorInfo detail in this domain, a delay as RetryInfo.
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
ERROR_DOMAIN = "edge"

# status -> (OpenAI type, Anthropic type, Google status)
_KINDS: dict[int, tuple[str, str, str]] = {
    400: ("invalid_request_error", "invalid_request_error", "INVALID_ARGUMENT"),
    401: ("authentication_error", "authentication_error", "UNAUTHENTICATED"),
    403: ("permission_error", "permission_error", "PERMISSION_DENIED"),
    404: ("not_found_error", "not_found_error", "NOT_FOUND"),
    405: ("invalid_request_error", "invalid_request_error", "INVALID_ARGUMENT"),
    408: ("invalid_request_error", "timeout_error", "DEADLINE_EXCEEDED"),
    409: ("invalid_request_error", "invalid_request_error", "ABORTED"),
    413: ("invalid_request_error", "request_too_large", "INVALID_ARGUMENT"),
    415: ("invalid_request_error", "invalid_request_error", "INVALID_ARGUMENT"),
    422: ("invalid_request_error", "invalid_request_error", "INVALID_ARGUMENT"),
    429: ("rate_limit_error", "rate_limit_error", "RESOURCE_EXHAUSTED"),
    500: ("server_error", "api_error", "INTERNAL"),
    502: ("upstream_error", "api_error", "UNAVAILABLE"),
    503: ("service_unavailable", "overloaded_error", "UNAVAILABLE"),
    504: ("timeout_error", "timeout_error", "DEADLINE_EXCEEDED"),
}


class GatewayError(Exception):
    """An error answered to the client with a status, a message and optional code and headers."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        type: str | None = None,
        headers: Mapping[str, str] | None = None,
        close: bool = False,
        retry: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.type = type
        self.headers = dict(headers or {})
        self.close = close
        self.retry = retry  # None: as the status says (see `worth_retrying`)

    @property
    def worth_retrying(self) -> bool:
        """Whether the same request may succeed later: said to clients as `x-should-retry`,
        which the official SDKs obey before their own status rules (they retry 429 and 5xx)."""
        if self.retry is not None:
            return self.retry
        return self.status in (408, 409, 429) or self.status >= 500


def bad_request(message: str, *, param: str | None = None, code: str | None = None) -> GatewayError:
    """A 400 naming the offending field."""
    return GatewayError(400, message, param=param, code=code)


def shape_for_path(path: str) -> ApiShape:
    """Which API's error shape a route uses."""
    if path.startswith(("/v1/messages", "/ai-gateway/anthropic/")):
        return "anthropic"
    if path.startswith(("/v1beta/", "/ai-gateway/gemini/")):
        return "gemini"
    if "/models/" in path and ":" in path.rsplit("/", 1)[-1]:
        return "gemini"  # `/v1/models/{model}:generateContent`, the Google SDK's default
    return "openai"


def _kinds(status: int) -> tuple[str, str, str]:
    if status in _KINDS:
        return _KINDS[status]
    return _KINDS[400] if status < 500 else _KINDS[502]


def _retry_seconds(err: GatewayError) -> int | None:
    for name, value in err.headers.items():
        if name.lower() == "retry-after" and value.isascii() and value.isdigit():
            return int(value)
    return None


def _google_details(err: GatewayError) -> list[dict[str, str]]:
    """Google's own conventions for what its error shape has no field for: the code as an
    ErrorInfo `reason`, the Retry-After as a RetryInfo `retryDelay`."""
    details: list[dict[str, str]] = []
    if err.code:
        details.append({"@type": ERROR_INFO, "reason": err.code, "domain": ERROR_DOMAIN})
    seconds = _retry_seconds(err)
    if seconds is not None:
        details.append({"@type": RETRY_INFO, "retryDelay": f"{seconds}s"})
    return details


def error_body(shape: ApiShape, err: GatewayError) -> dict[str, object]:
    """The JSON body of an error in one API's shape; its code travels in every shape (OpenAI
    `error.code`, Anthropic `error.code`, Google `error.details[].reason` of an ErrorInfo)."""
    openai_type, anthropic_type, google_status = _kinds(err.status)
    if shape == "anthropic":
        inner: dict[str, object] = {"type": err.type or anthropic_type, "message": err.message}
        # A refusal that closes the connection (413, 408, an undecodable body) is answered
        # before the request is understood, with the body Anthropic itself sends for it.
        if err.code and not err.close:
            inner["code"] = err.code
        return {"type": "error", "error": inner}
    if shape == "gemini":
        google: dict[str, object] = {
            "code": err.status,
            "message": err.message,
            "status": google_status,
        }
        details = _google_details(err)
        if details:
            google["details"] = details
        return {"error": google}
    return {
        "error": {
            "message": err.message,
            "type": err.type or openai_type,
            "param": err.param,
            "code": err.code,
        }
    }


def error_response(
    shape: ApiShape, err: GatewayError, request_id: str | None = None
) -> web.Response:
    """A complete JSON error response."""
    headers = dict(err.headers)
    if request_id:
        headers["x-request-id"] = request_id
    if shape == "anthropic" and request_id:
        headers["request-id"] = request_id
    if not err.worth_retrying:
        headers["x-should-retry"] = "false"
    response = web.Response(
        status=err.status,
        body=orjson.dumps(error_body(shape, err)),
        content_type="application/json",
        headers=headers,
    )
    if err.close:
        response.force_close()
    return response
