"""Credentials: who calls, with which scopes, bound to which branch; API key format and hashing."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Literal

SCOPE_INVOKE = "ai_gateway:invoke"
SCOPE_ADMIN = "ai_gateway:admin"
KNOWN_SCOPES: frozenset[str] = frozenset({SCOPE_INVOKE, SCOPE_ADMIN})

KEY_PREFIX = "ek_"
_ID_BYTES = 8  # 16 hex chars: the public, indexable part
_SECRET_BYTES = 32  # 256 bits of secret, well over the 192-bit floor
# Matched whole: int(.., 16) also took signs, underscores and surrounding whitespace.
_KEY_ID_RE = re.compile(f"[0-9a-f]{{{_ID_BYTES * 2}}}")


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller."""

    kind: Literal["key", "jwt", "bootstrap"]
    subject: str  # key id, JWT subject, or "bootstrap"
    account: str | None  # None: a global credential (the bootstrap admin token)
    scopes: frozenset[str]
    branch: str | None = None

    def has(self, scope: str) -> bool:
        """Whether the principal carries a scope."""
        return scope in self.scopes


@dataclass(frozen=True, slots=True)
class ParsedKey:
    """An API key split into its public id and secret."""

    key_id: str
    secret: str


def new_api_key() -> tuple[str, str]:
    """Return (key_id, full_key): a fresh random key, to be shown once."""
    key_id = secrets.token_hex(_ID_BYTES)
    return key_id, f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(_SECRET_BYTES)}"


def parse_api_key(token: str) -> ParsedKey | None:
    """Split a presented key; None when it is not shaped like one of ours."""
    if not token.startswith(KEY_PREFIX):
        return None
    key_id, sep, secret = token[len(KEY_PREFIX) :].partition("_")
    if not sep or _KEY_ID_RE.fullmatch(key_id) is None or not secret or len(token) > 256:
        return None
    return ParsedKey(key_id=key_id, secret=secret)


def hash_key(server_secret: bytes, token: str) -> str:
    """The stored form of a key: HMAC-SHA256 under the server's secret, hex."""
    return hmac.new(server_secret, token.encode("utf-8"), hashlib.sha256).hexdigest()


def key_matches(server_secret: bytes, token: str, stored_hash: str) -> bool:
    """Constant-time comparison of a presented key with its stored hash."""
    return hmac.compare_digest(hash_key(server_secret, token), stored_hash)


def looks_like_jwt(token: str) -> bool:
    """A compact JWS has three dot-separated base64url segments."""
    return token.count(".") == 2 and not token.startswith(KEY_PREFIX)


def normalize_scopes(scopes: list[str] | tuple[str, ...] | str) -> frozenset[str]:
    """Scopes from a list or a space-separated string (the OAuth `scope` claim form)."""
    items = scopes.split() if isinstance(scopes, str) else scopes
    return frozenset(s for s in items if isinstance(s, str) and s)
