"""Budget alerts, the pure part: which thresholds a budget has reached, the claim that makes each
one fire once per period, and the signature a receiver checks.

The signature follows the common webhook scheme: header
`Edge-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">` with the operator's
secret, so a receiver rejects forged and (by `t`) replayed deliveries.
"""

from __future__ import annotations

import hashlib
import hmac

DEFAULT_THRESHOLDS = (0.5, 0.8, 1.0)
SIGNATURE_HEADER = "Edge-Signature"
SIGNATURE_TOLERANCE = 300  # seconds a receiver accepts between `t` and its clock


def reached(used: int, limit: int, thresholds: tuple[float, ...]) -> list[float]:
    """The thresholds (fractions of `limit`) that `used` has reached, lowest first."""
    if limit <= 0:
        return []
    return [t for t in thresholds if used >= t * limit]


def claim_key(counter_key: str, threshold: float) -> str:
    """The store key one alert claims: per budget counter (a scope's budget in one window, whose
    key carries the account's hash tag) and threshold."""
    return f"{counter_key}:alert:{threshold:g}"


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """The `Edge-Signature` header value of a delivery."""
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: bytes, header: str, body: bytes, now: float) -> bool:
    """A receiver's check: the signature matches and was made within the tolerance."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    stamp, given = parts.get("t", ""), parts.get("v1", "")
    if not stamp.isdigit() or abs(now - int(stamp)) > SIGNATURE_TOLERANCE:
        return False
    expected = signature(secret, int(stamp), body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, given)
