"""Turn presented credentials into a Principal, or refuse with 401."""

from __future__ import annotations

import hmac
import time

import jwt
from aiohttp import web

from edge.auth.jwks import JwksCache
from edge.errors import GatewayError
from edge.identity_cache import IdentityCache
from edge.route_table import facts_of
from policies.credentials import (
    SCOPE_ADMIN,
    Principal,
    hash_key,
    looks_like_jwt,
    normalize_scopes,
    parse_api_key,
)
from policies.jwt_issuers import Issuer, unverified_header_and_issuer, verify

UNAUTHORIZED = GatewayError(401, "Invalid authentication credentials", code="invalid_api_key")
# Compared against in place of a hash the key id does not have (unknown or revoked id, no
# rotation), so unknown and wrong keys cost the same work.
_DUMMY_HASH = "0" * 64


def raw_bytes(text: str) -> bytes:
    """A header value's bytes as the client sent them: aiohttp keeps bytes that are not UTF-8
    as surrogates, which a plain encode refuses (a 500 for a stranger's latin-1 header)."""
    return text.encode("utf-8", "surrogateescape")


def presented_tokens(request: web.Request) -> list[str]:
    """Every credential the request's headers carry, in the order the SDKs send them."""
    tokens = []
    auth = request.headers.get("Authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        tokens.append(value.strip())
    for header in ("x-api-key", "x-goog-api-key"):
        value = request.headers.get(header, "").strip()
        if value:
            tokens.append(value)
    return tokens


def query_key(request: web.Request) -> str | None:
    """A `?key=` invoke key, on the routes whose API puts it there (Gemini's) only."""
    if not facts_of(request).query_key:
        return None
    return request.query.get("key", "").strip() or None


class Authenticator:
    """Verifies API keys, JWTs and the bootstrap admin token."""

    def __init__(
        self,
        identity: IdentityCache,
        server_secret: bytes,
        issuers: tuple[Issuer, ...],
        jwks: JwksCache,
        admin_token: str | None,
    ) -> None:
        self._identity = identity
        self._secret = server_secret
        self._issuers = {i.issuer: i for i in issuers}
        self._jwks = jwks
        self._admin_token = admin_token

    async def authenticate(self, request: web.Request) -> Principal:
        """The caller's principal; raises a 401 GatewayError."""
        tokens = presented_tokens(request)
        # Keys and JWTs are ASCII by construction: anything else can only be the admin token.
        ascii_tokens = [token for token in tokens if token.isascii()]
        # A key in the URL is only ever an API key: never the admin token nor a JWT.
        in_url = query_key(request)
        keys = [*ascii_tokens, in_url] if in_url is not None and in_url.isascii() else ascii_tokens
        # An API key wins over a JWT, even when the key is invalid.
        for token in keys:
            parsed = parse_api_key(token)
            if parsed is not None:
                return await self._api_key(token, parsed.key_id)
        for token in tokens:
            if self._admin_token and hmac.compare_digest(
                raw_bytes(token), raw_bytes(self._admin_token)
            ):
                return Principal(
                    kind="bootstrap",
                    subject="bootstrap",
                    account=None,
                    scopes=frozenset({SCOPE_ADMIN}),
                )
        for token in ascii_tokens:
            if looks_like_jwt(token) and self._issuers:
                return await self._jwt(token)
        raise UNAUTHORIZED

    async def _api_key(self, token: str, key_id: str) -> Principal:
        record = await self._identity.key(key_id)
        live = record if record is not None and not record.revoked else None
        # The same work whatever the key id names: one HMAC of the presented key and two
        # constant-time compares (the current hash, then the previous one of a rotation), each
        # against the dummy when there is no such hash (unknown or revoked id, never rotated).
        # No early exit, so a wrong secret for a real, revoked or rotated key takes the path an
        # unknown key id takes.
        current = live.hash if live is not None else _DUMMY_HASH
        previous = live.previous_hash if live is not None and live.previous_hash else _DUMMY_HASH
        grace_until = live.previous_valid_until if live is not None and live.previous_hash else None
        in_grace = time.time() < (grace_until or 0.0)
        presented = hash_key(self._secret, token)
        matches_current = hmac.compare_digest(presented, current)
        matches_previous = hmac.compare_digest(presented, previous)
        if live is None or not (matches_current or (matches_previous and in_grace)):
            raise UNAUTHORIZED
        return Principal(
            kind="key",
            subject=live.id,
            account=live.account,
            scopes=normalize_scopes(live.scopes),
            branch=live.branch,
        )

    async def _jwt(self, token: str) -> Principal:
        try:
            header, iss = unverified_header_and_issuer(token)
        except jwt.PyJWTError as exc:
            raise UNAUTHORIZED from exc
        issuer = self._issuers.get(iss or "")
        alg = header.get("alg")
        if issuer is None or not isinstance(alg, str) or alg not in issuer.algorithms:
            raise UNAUTHORIZED
        kid = header.get("kid")
        keys = await self._jwks.candidates(issuer, kid if isinstance(kid, str) else None)
        for key in keys:
            try:
                return verify(token, issuer, key)
            except jwt.InvalidSignatureError:
                continue
            except (jwt.PyJWTError, ValueError, TypeError) as exc:
                raise UNAUTHORIZED from exc
        raise UNAUTHORIZED
