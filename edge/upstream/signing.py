"""Per-process signers for providers whose credential is more than a static key: SigV4 for
Bedrock, OAuth access tokens for Vertex AI. Each is made once per provider and kept."""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

from edge.errors import GatewayError
from edge.upstream.aws import AwsSigner, have_botocore
from edge.upstream.google_tokens import GoogleTokens, have_google_auth
from policies.catalog import Provider


class Signer(Protocol):
    """What adds a call's credentials once its URL, body and other headers are final."""

    async def sign(
        self, method: str, url: str, body: bytes, headers: dict[str, str]
    ) -> dict[str, str]:
        """The headers to send: `headers` plus the credentials."""


def not_configured(provider: Provider, why: str) -> GatewayError:
    """503 for a provider this process cannot call (an operator's configuration problem)."""
    return GatewayError(
        503,
        f"provider '{provider.name}' is not configured on this gateway: {why}",
        code="provider_not_configured",
        type="configuration_error",
        retry=False,
    )


class ProviderCredentials:
    """The signers of this process, by provider name, each made at its first call."""

    def __init__(self) -> None:
        self._signers: dict[str, Signer] = {}

    def signer_for(self, provider: Provider) -> Signer | None:
        """The provider's signer; None when its key is a static header (`upstream_headers`)."""
        if provider.kind not in ("bedrock", "vertex"):
            return None
        signer = self._signers.get(provider.name)
        if signer is None:
            signer = self._signers[provider.name] = self._make(provider)
        return signer

    @staticmethod
    def _make(provider: Provider) -> Signer:
        if provider.kind == "bedrock":
            if not have_botocore():
                raise not_configured(provider, "the bedrock extra (botocore) is not installed")
            return AwsSigner(provider.region or "", service="bedrock")
        if not have_google_auth():
            raise not_configured(provider, "the vertex extra (google-auth) is not installed")
        return GoogleTokens(provider.credentials_file)


CREDENTIALS = web.AppKey("provider_credentials", ProviderCredentials)
