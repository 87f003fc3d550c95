"""OAuth access tokens for Vertex AI by google-auth: a service account's file, else the
environment's application default credentials (workload identity, the metadata server)."""

from __future__ import annotations

import asyncio
from typing import Any

from edge.errors import GatewayError

try:  # the `vertex` extra
    import google.auth
    from google.auth.exceptions import GoogleAuthError
    from google.auth.transport.requests import Request
    from google.oauth2 import service_account

    HAVE_GOOGLE_AUTH = True
except ImportError:  # pragma: no cover - the extra is installed wherever tests run
    HAVE_GOOGLE_AUTH = False

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
NO_ACCESS = "The gateway could not obtain an access token for its Vertex AI provider."


def have_google_auth() -> bool:
    """Whether google-auth is installed."""
    return HAVE_GOOGLE_AUTH


class GoogleTokens:
    """One provider's access token, kept until google-auth counts it as expiring (a few
    minutes before its end) and then refreshed once, off the event loop, for every caller."""

    def __init__(self, credentials_file: str | None) -> None:
        self._file = credentials_file
        self._credentials: Any = None
        self._lock = asyncio.Lock()

    def _load(self) -> Any:
        if self._file:
            return service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
                self._file, scopes=SCOPES
            )
        credentials, _ = google.auth.default(scopes=SCOPES)
        return credentials

    async def token(self) -> str:
        """A valid access token (the kept one, or a fresh one when it is about to expire)."""
        held = self._credentials
        if held is not None and held.valid:
            return str(held.token)
        async with self._lock:  # one refresh for all the calls that found it expiring
            try:
                if self._credentials is None:
                    self._credentials = await asyncio.to_thread(self._load)
                if not self._credentials.valid:
                    await asyncio.to_thread(self._credentials.refresh, Request())
            except (GoogleAuthError, OSError, ValueError) as exc:
                # A missing or bad key file, a refused grant, an unreachable token endpoint.
                raise GatewayError(502, NO_ACCESS, code="upstream_auth_failed") from exc
            return str(self._credentials.token)

    async def sign(
        self, method: str, url: str, body: bytes, headers: dict[str, str]
    ) -> dict[str, str]:
        """The headers with the bearer token."""
        return {**headers, "Authorization": f"Bearer {await self.token()}"}
