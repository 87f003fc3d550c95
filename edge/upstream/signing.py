"""Per-process signers for providers whose credential is more than a static key: SigV4 for
Bedrock, OAuth access tokens for Vertex AI. Each is made once per provider and kept."""

from __future__ import annotations

import importlib
from typing import Protocol, cast

from aiohttp import web

from edge.errors import GatewayError
from policies.catalog import Provider

# botocore and google-auth each cost a process tens of MB and a good part of a second to load:
# their modules are imported at the first call to a provider of their kind, never otherwise.
_SIGNER_MODULES = {
    "bedrock": ("edge.upstream.aws", "the bedrock extra (botocore)"),
    "vertex": ("edge.upstream.google_tokens", "the vertex extra (google-auth)"),
}


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
        if provider.kind not in _SIGNER_MODULES:
            return None
        signer = self._signers.get(provider.name)
        if signer is None:
            signer = self._signers[provider.name] = self._make(provider)
        return signer

    @staticmethod
    def _make(provider: Provider) -> Signer:
        name, extra = _SIGNER_MODULES[provider.kind]
        module = importlib.import_module(name)
        if provider.kind == "bedrock":
            if not module.have_botocore():
                raise not_configured(provider, f"{extra} is not installed")
            return cast(Signer, module.AwsSigner(provider.region or "", service="bedrock"))
        if not module.have_google_auth():
            raise not_configured(provider, f"{extra} is not installed")
        return cast(Signer, module.GoogleTokens(provider.credentials_file))


CREDENTIALS = web.AppKey("provider_credentials", ProviderCredentials)
