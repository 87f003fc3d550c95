"""Fetching and caching issuers' signing keys; unknown `kid`s cannot force more than one fetch
per issuer every `refetch_interval` seconds."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jwt

from policies.jwt_issuers import Issuer

log = logging.getLogger(__name__)
MAX_JWKS_BYTES = 512 * 1024


@dataclass(slots=True)
class _IssuerKeys:
    by_kid: dict[str, Any] = field(default_factory=dict)
    anonymous: list[Any] = field(default_factory=list)
    fetched_at: float = float("-inf")
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class JwksCache:
    """Signing keys per issuer: static PEM keys, or a JWKS document fetched over HTTPS."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        ttl: float = 300.0,
        refetch_interval: float = 30.0,
    ) -> None:
        self._session = session
        self._ttl = ttl
        self._refetch_interval = refetch_interval
        self._keys: dict[str, _IssuerKeys] = {}
        self.fetches = 0  # observable by tests and metrics

    async def candidates(self, issuer: Issuer, kid: str | None) -> list[Any]:
        """Keys that may have signed a token with this `kid`."""
        if issuer.public_keys:
            return list(issuer.public_keys)
        if issuer.jwks_url is None:
            return []
        state = self._keys.setdefault(issuer.issuer, _IssuerKeys())
        age = time.monotonic() - state.fetched_at
        known = kid in state.by_kid if kid else bool(state.by_kid or state.anonymous)
        if age > self._ttl or (not known and age > self._refetch_interval):
            async with state.lock:
                age = time.monotonic() - state.fetched_at
                if age > self._ttl or (not known and age > self._refetch_interval):
                    await self._fetch(issuer.jwks_url, state)
        if kid:
            found = state.by_kid.get(kid)
            return [found] if found is not None else []
        return [*state.by_kid.values(), *state.anonymous]

    async def _fetch(self, url: str, state: _IssuerKeys) -> None:
        # Counted before the attempt: a failing JWKS endpoint is rate-limited just the same.
        state.fetched_at = time.monotonic()
        self.fetches += 1
        try:
            async with self._session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as resp:
                if resp.status != 200:
                    log.warning("JWKS fetch from %s answered %s", url, resp.status)
                    return
                raw = await resp.content.read(MAX_JWKS_BYTES + 1)
                if len(raw) > MAX_JWKS_BYTES:
                    log.warning("JWKS document from %s is too large", url)
                    return
            keyset = jwt.PyJWKSet.from_json(raw.decode("utf-8"))
        except (aiohttp.ClientError, TimeoutError, jwt.PyJWKSetError, UnicodeDecodeError) as exc:
            log.warning("JWKS fetch from %s failed: %s", url, type(exc).__name__)
            return
        state.by_kid = {k.key_id: k.key for k in keyset.keys if k.key_id}
        state.anonymous = [k.key for k in keyset.keys if not k.key_id]
