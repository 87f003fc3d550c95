"""How long a failing deployment rests, and how far a call may retry before its first byte."""

from __future__ import annotations

import email.utils
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

# A streak's first cooldown, doubled per further failure, never past the cap.
BASE_COOLDOWN = 2.0
MAX_COOLDOWN = 300.0
# A failure this long after the last cooldown ended starts a new streak.
STREAK_MEMORY = 120.0
# Failures one request may provoke by itself (a provider's 5xx on an odd input, a generation
# slower than the timeout): one account's alone never cool a deployment for every tenant. They
# do once a second account's call fails there within this many seconds of the first's.
ATTRIBUTABLE = frozenset({"server_error", "timeout"})
BLAME_WINDOW = 60.0
# The provider's reset headers: `Retry-After` / `retry-after-ms` first, then the reset times
# of OpenAI-style (`x-ratelimit-reset-requests: 6m0s`) and Anthropic (`...-reset: <RFC 3339>`)
# rate-limit headers, of which the latest counts (which limit was hit is not said).
_RESET = re.compile(r"^(?:x-ratelimit-reset-(.+)|anthropic-ratelimit-(.+)-reset)$")
_REMAINING = re.compile(r"^(?:x-ratelimit-remaining-(.+)|anthropic-ratelimit-(.+)-remaining)$")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True, slots=True)
class RetryBounds:
    """How far one model's deployments are retried for a call, before its first byte."""

    attempts: int = 3  # in all, the first included
    budget: float = 15.0  # seconds from the first attempt after which none starts
    backoff: float = 0.25  # before trying the same deployment again (the only one left)


def _seconds(value: str, now: float) -> float | None:
    """A delay from one header value: seconds, a Go-style duration, or a date."""
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    parts = _DURATION.findall(text)
    if parts and "".join(n + u for n, u in parts) == text:
        return sum(float(n) * _UNITS[u] for n, u in parts)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
    if when.tzinfo is None:
        return None
    return when.timestamp() - now


def provider_delay(headers: Iterable[tuple[str, str]], now: float) -> float | None:
    """How long the provider asked to be left alone, from its headers; None when it did not.
    Without `Retry-After`, the reset of a limit whose remaining count is 0 (the one that was
    hit), else the latest reset (which limit was hit is not said)."""
    resets: dict[str, float] = {}
    spent: set[str] = set()
    for name, value in headers:
        key = name.lower()
        if key == "retry-after-ms":
            try:
                return max(0.0, float(value) / 1000.0)
            except ValueError:
                continue
        if key == "retry-after":
            found = _seconds(value, now)
            if found is not None:
                return max(0.0, found)
        elif reset := _RESET.match(key):
            found = _seconds(value, now)
            if found is not None:
                resets[reset.group(1) or reset.group(2)] = found
        elif (remaining := _REMAINING.match(key)) and value.strip() == "0":
            spent.add(remaining.group(1) or remaining.group(2))
    hit = [resets[limit] for limit in spent if limit in resets] or list(resets.values())
    return max(0.0, max(hit)) if hit else None


def shared_fault(
    fault: str, account: str | None, earlier: tuple[str | None, float] | None, now: float
) -> bool:
    """Whether a failure cools its deployment down for every tenant: a rate limit or a
    transport failure always does; a 5xx or a timeout only when `earlier` (the account and time
    of the last one there) shows another account's call failed there within the window."""
    if fault not in ATTRIBUTABLE:
        return True
    if earlier is None or now - earlier[1] > BLAME_WINDOW:
        return False
    return earlier[0] != account


def streak(previous_strikes: int, previous_until: float, now: float) -> int:
    """The failure count this failure makes: the streak goes on while failures keep coming."""
    if previous_strikes > 0 and now < previous_until + STREAK_MEMORY:
        return previous_strikes + 1
    return 1


def cooldown(strikes: int, asked: float | None) -> float:
    """Seconds to rest: what the provider asked for when it said (bounded), else a period
    that doubles with the streak, bounded."""
    if asked is not None:
        return min(max(asked, 0.0), MAX_COOLDOWN)
    return min(BASE_COOLDOWN * 2.0 ** min(max(strikes, 1) - 1, 16), MAX_COOLDOWN)
