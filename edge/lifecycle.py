"""Process lifecycle state: whether the process is draining for shutdown."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Lifecycle:
    """Mutable per-process lifecycle flags, owned by the app."""

    draining: bool = False
    refusing: bool = False  # past the grace period: new requests are refused
