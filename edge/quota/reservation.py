"""A reservation: what one call holds until it settles, in a form any process can settle."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from edge.store.quota import reservation_key


@dataclass(slots=True)
class Reservation:
    """Tokens and cost held for one call until it settles.

    Serializable, so a background run finished by another process can settle it.
    """

    id: str
    account: str
    key_id: str | None
    model: str | None
    tokens: int = 0  # the estimate held
    cost_micros: int = 0
    created_at: float = field(default_factory=time.time)
    holds: list[list[Any]] = field(default_factory=list)  # [counter key, "tokens"|"cost", amount]
    slots: list[str] = field(default_factory=list)  # in-flight sets joined
    local: bool = False  # held by one process's fallback store (the shared one was down)

    @property
    def marker(self) -> str:
        """The store key present while the reservation is open."""
        return reservation_key(self.account, self.id)

    def deltas(self, tokens: int, cost_micros: int) -> list[tuple[str, int]]:
        """Per counter, real usage minus what was held."""
        out = []
        for key, kind, amount in self.holds:
            real = tokens if kind == "tokens" else cost_micros
            out.append((str(key), int(real) - int(amount)))
        return out

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Reservation:
        """Parse a stored reservation."""
        return cls(**data)
