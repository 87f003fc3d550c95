"""SigV4 for Amazon Bedrock, by botocore's own signer, with credentials from the AWS chain."""

from __future__ import annotations

import asyncio
from typing import Any

from edge.errors import GatewayError

try:  # the `bedrock` extra
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials, RefreshableCredentials
    from botocore.exceptions import BotoCoreError
    from botocore.session import Session

    HAVE_BOTOCORE = True
except ImportError:  # pragma: no cover - the extra is installed wherever tests run
    HAVE_BOTOCORE = False

NO_CREDENTIALS = (
    "No AWS credentials were found for the Bedrock provider (environment, shared files, "
    "container or instance role)."
)


NO_REFRESH = "The gateway could not obtain AWS credentials for its Bedrock provider."


def have_botocore() -> bool:
    """Whether botocore is installed."""
    return HAVE_BOTOCORE


class AwsSigner:
    """Signs Bedrock calls; credentials are found once (the chain reads files and may call the
    instance metadata service), and refreshed by botocore off the event loop when they expire."""

    def __init__(self, region: str, service: str) -> None:
        self._region = region
        self._service = service
        self._credentials: Credentials | None = None
        self._lock = asyncio.Lock()

    async def _current(self) -> Any:
        try:
            return await self._frozen()
        except BotoCoreError as exc:  # a bad profile, an unreachable role or metadata service
            raise GatewayError(502, NO_REFRESH, code="upstream_auth_failed") from exc

    async def _frozen(self) -> Any:
        if self._credentials is None:
            async with self._lock:
                if self._credentials is None:
                    found = await asyncio.to_thread(Session().get_credentials)
                    if found is None:
                        raise GatewayError(503, NO_CREDENTIALS, code="provider_not_configured")
                    self._credentials = found
        creds = self._credentials
        if isinstance(creds, RefreshableCredentials) and creds.refresh_needed():
            return await asyncio.to_thread(creds.get_frozen_credentials)
        return creds.get_frozen_credentials()

    async def sign(
        self, method: str, url: str, body: bytes, headers: dict[str, str]
    ) -> dict[str, str]:
        """The headers with `Authorization`, `X-Amz-Date` (and a session token) added."""
        request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
        SigV4Auth(await self._current(), self._service, self._region).add_auth(request)
        return dict(request.headers.items())
