"""JWT issuers and the verification rules applied to bearer tokens that are JWTs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from policies.credentials import Principal, normalize_scopes

# Symmetric and asymmetric families must never be mixed under one issuer: that is the
# algorithm-confusion attack (an RSA public key used as an HMAC secret).
ASYMMETRIC_ALGS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
SYMMETRIC_ALGS = frozenset({"HS256", "HS384", "HS512"})


class IssuerConfigError(ValueError):
    """A JWT issuer declaration is invalid."""


@dataclass(frozen=True, slots=True)
class Issuer:
    """A trusted token issuer."""

    issuer: str
    audience: str
    algorithms: tuple[str, ...]
    jwks_url: str | None = None
    public_keys: tuple[str, ...] = ()  # PEM keys (or HMAC secrets for HS* issuers)
    account_claim: str = "account"
    scope_claim: str = "scope"
    branch_claim: str = "branch"
    leeway: int = 30


def parse_issuers(raw: list[Mapping[str, Any]]) -> tuple[Issuer, ...]:
    """Validate `[[jwt.issuers]]` declarations."""
    out = []
    for n, item in enumerate(raw):
        where = f"jwt.issuers[{n}]"
        for name in ("issuer", "audience", "algorithms"):
            if name not in item:
                raise IssuerConfigError(f"{where}.{name}: required")
        algs = tuple(item["algorithms"])
        if not algs or any(a not in ASYMMETRIC_ALGS | SYMMETRIC_ALGS for a in algs):
            raise IssuerConfigError(f"{where}.algorithms: unsupported or empty (no 'none')")
        if set(algs) & SYMMETRIC_ALGS and set(algs) & ASYMMETRIC_ALGS:
            raise IssuerConfigError(
                f"{where}.algorithms: do not mix HMAC and public-key algorithms"
            )
        keys = item.get("public_keys", [])
        if isinstance(keys, str):
            keys = [keys]
        if not item.get("jwks_url") and not keys:
            raise IssuerConfigError(f"{where}: needs jwks_url or public_keys")
        out.append(
            Issuer(
                issuer=str(item["issuer"]),
                audience=str(item["audience"]),
                algorithms=algs,
                jwks_url=item.get("jwks_url"),
                public_keys=tuple(keys),
                account_claim=str(item.get("account_claim", "account")),
                scope_claim=str(item.get("scope_claim", "scope")),
                branch_claim=str(item.get("branch_claim", "branch")),
                leeway=int(item.get("leeway", 30)),
            )
        )
    return tuple(out)


def unverified_header_and_issuer(token: str) -> tuple[dict[str, Any], str | None]:
    """Read the header and `iss` without trusting them: only to pick the issuer and key."""
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    iss = claims.get("iss")
    return header, iss if isinstance(iss, str) else None


def verify(token: str, issuer: Issuer, key: Any) -> Principal:
    """Verify signature and registered claims; map claims to a principal. Raises jwt errors."""
    claims = jwt.decode(
        token,
        key=key,
        algorithms=list(issuer.algorithms),
        audience=issuer.audience,
        issuer=issuer.issuer,
        leeway=issuer.leeway,
        options={"require": ["exp", "iss", "aud"], "verify_signature": True},
    )
    account = claims.get(issuer.account_claim)
    if not isinstance(account, str) or not account:
        raise jwt.InvalidTokenError(f"missing {issuer.account_claim} claim")
    raw_scopes = claims.get(issuer.scope_claim, [])
    scopes = normalize_scopes(raw_scopes if isinstance(raw_scopes, list | str) else [])
    branch = claims.get(issuer.branch_claim)
    return Principal(
        kind="jwt",
        subject=str(claims.get("sub", "")),
        account=account,
        scopes=scopes,
        branch=branch if isinstance(branch, str) and branch else None,
    )
