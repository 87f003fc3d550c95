"""Deployments of one model: how they are declared, and the pure rules that order them for a
call (priority tiers, weights shifted away from provider-side limits, cooldowns skipped)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_DEPLOYMENTS = 16
# A deployment keeps its whole weight until it has used this share of a provider-side limit
# in the current minute; its weight then falls linearly to nothing at the limit, so traffic
# moves to its peers before the provider starts refusing.
SHIFT_FROM = 0.8
_FIELDS = {"name", "provider", "upstream", "weight", "priority", "rpm", "tpm"}


class DeploymentError(ValueError):
    """A deployment declaration is invalid."""


@dataclass(frozen=True, slots=True)
class Deployment:
    """One place a model is served: a provider (its URL, credentials, region) and its name
    for the model there, with a weight, a priority tier (0 first) and the provider-side
    requests and tokens per minute that deployment's account allows (None: not tracked)."""

    name: str
    provider: str
    upstream: str
    weight: float = 1.0
    priority: int = 0
    rpm: int | None = None
    tpm: int | None = None

    @property
    def limited(self) -> bool:
        """Whether its use is tracked against provider-side limits."""
        return self.rpm is not None or self.tpm is not None


@dataclass(frozen=True, slots=True)
class Load:
    """What the shared store knows of one deployment: until when it cools down (epoch
    seconds), its failure streak, and what it used in the current minute."""

    cooled_until: float = 0.0
    strikes: int = 0
    requests: int = 0
    tokens: int = 0


IDLE = Load()


def _positive_int(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise DeploymentError(f"{where}: expected a positive integer")
    return value


def _one(raw: Any, where: str, model_upstream: str) -> Deployment:
    if not isinstance(raw, Mapping):
        raise DeploymentError(f"{where}: expected a table")
    unknown = set(raw) - _FIELDS
    if unknown:
        raise DeploymentError(f"{where}: unknown fields {sorted(unknown)}")
    provider = raw.get("provider")
    if not isinstance(provider, str) or not provider:
        raise DeploymentError(f"{where}.provider: required string")
    weight = raw.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, int | float):
        raise DeploymentError(f"{where}.weight: expected a number")
    if not math.isfinite(weight) or weight <= 0:
        raise DeploymentError(f"{where}.weight: must be above 0")
    priority = raw.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int) or priority < 0:
        raise DeploymentError(f"{where}.priority: expected an integer >= 0 (0 is tried first)")
    name = raw.get("name", provider)
    upstream = raw.get("upstream", model_upstream)
    for key, value in (("name", name), ("upstream", upstream)):
        if not isinstance(value, str) or not value:
            raise DeploymentError(f"{where}.{key}: expected a non-empty string")
    return Deployment(
        name=name,
        provider=provider,
        upstream=upstream,
        weight=float(weight),
        priority=priority,
        rpm=_positive_int(raw.get("rpm"), f"{where}.rpm"),
        tpm=_positive_int(raw.get("tpm"), f"{where}.tpm"),
    )


def parse_deployments(raw: Any, where: str, model_upstream: str) -> tuple[Deployment, ...]:
    """A model's `deployments` list (at least one; names unique within the model)."""
    if not isinstance(raw, list) or not raw:
        raise DeploymentError(f"{where}: expected a non-empty list of tables")
    if len(raw) > MAX_DEPLOYMENTS:
        raise DeploymentError(f"{where}: at most {MAX_DEPLOYMENTS} deployments")
    found = tuple(_one(item, f"{where}[{n}]", model_upstream) for n, item in enumerate(raw))
    names = [d.name for d in found]
    if len(set(names)) != len(names):
        raise DeploymentError(
            f"{where}: deployment names must differ (give each a `name` when two share a provider)"
        )
    return found


def headroom(deployment: Deployment, load: Load) -> float:
    """The share of its weight a deployment keeps this minute: 1 until `SHIFT_FROM` of a
    provider-side limit is used, falling to 0 at the limit."""
    share = 1.0
    for used, limit in ((load.requests, deployment.rpm), (load.tokens, deployment.tpm)):
        if limit is not None:
            ratio = used / limit
            if ratio >= 1.0:
                return 0.0
            if ratio > SHIFT_FROM:
                share = min(share, (1.0 - ratio) / (1.0 - SHIFT_FROM))
    return share


def _pick(members: Sequence[int], weights: Sequence[float], turn: list[float]) -> int:
    """Smooth weighted round robin (nginx's): each pick adds every member's weight to its
    running credit and takes the largest, which then pays back the tier's total. Over any run
    of picks each member's share is its weight's share, to within one pick, with no draws."""
    total = 0.0
    best = members[0]
    for i in members:
        turn[i] += weights[i]
        total += weights[i]
        if turn[i] > turn[best]:
            best = i
    turn[best] -= total
    return best


def plan(
    deployments: Sequence[Deployment],
    loads: Sequence[Load],
    now: float,
    turn: list[float],
    sticky: str | None = None,
) -> list[int]:
    """The order to try a model's deployments in, as indexes; deployments cooling down are
    left out. First the best tier that has a healthy deployment with capacity: one chosen by
    weight (shifted by headroom; `turn` is the caller's round-robin credit per deployment),
    then its peers by weight; then the later tiers; then healthy deployments at their limits.
    A `sticky` deployment (one holding the conversation's state) goes first when healthy."""
    weights = [0.0] * len(deployments)
    spare: list[int] = []
    full: list[int] = []
    for i, (dep, load) in enumerate(zip(deployments, loads, strict=True)):
        if load.cooled_until > now:
            continue
        weights[i] = dep.weight * headroom(dep, load)
        (spare if weights[i] > 0 else full).append(i)
    order: list[int] = []
    if spare:
        top = min(deployments[i].priority for i in spare)
        first = _pick([i for i in spare if deployments[i].priority == top], weights, turn)
        rest = sorted(
            (i for i in spare if i != first),
            key=lambda i: (deployments[i].priority, -weights[i]),
        )
        order = [first, *rest]
    order += sorted(full, key=lambda i: (deployments[i].priority, -deployments[i].weight))
    if sticky is not None:
        held = next((i for i in order if deployments[i].name == sticky), None)
        if held is not None:
            order.remove(held)
            order.insert(0, held)
    return order
