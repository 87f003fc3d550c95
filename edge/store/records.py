"""Records kept in the store, with their JSON forms."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any


def now() -> float:
    """Wall-clock seconds; records carry absolute times so any replica can read them."""
    return time.time()


@dataclass(slots=True)
class Account:
    """A tenant."""

    id: str
    plan: str = "default"
    blocked: bool = False
    blocked_reason: str | None = None
    quota: dict[str, Any] = field(default_factory=dict)  # runtime overrides on top of the plan
    created_at: float = field(default_factory=now)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Account:
        """Parse a stored record."""
        return cls(**data)


@dataclass(slots=True)
class Branch:
    """A node of an account's branch tree."""

    id: str
    account: str
    parent: str | None = None
    created_at: float = field(default_factory=now)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Branch:
        """Parse a stored record."""
        return cls(**data)


@dataclass(slots=True)
class KeyRecord:
    """An API key's stored form: never the secret, only its keyed hash."""

    id: str
    account: str
    hash: str
    scopes: list[str]
    branch: str | None = None
    name: str | None = None
    plan: str | None = None
    quota: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=now)
    revoked_at: float | None = None
    # During a rotation the previous secret's hash stays valid until this time.
    previous_hash: str | None = None
    previous_valid_until: float | None = None

    @property
    def revoked(self) -> bool:
        """Whether the key has been revoked."""
        return self.revoked_at is not None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form (includes the hash: for the store only, never for clients)."""
        return asdict(self)

    def public(self) -> dict[str, Any]:
        """What the admin API shows: everything but hashes."""
        data = asdict(self)
        for secret_field in ("hash", "previous_hash"):
            data.pop(secret_field, None)
        data["revoked"] = self.revoked
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KeyRecord:
        """Parse a stored record."""
        return cls(**data)
