"""Access lists: which models and client APIs a scope (a plan, an account, a key) may call.

A scope's table may set `models` (globs a model must match), `deny_models` (globs it must not
match; deny wins) and `endpoints` (the client APIs it may call). A call is allowed only when
every scope of the caller allows it, so a key's list can only narrow its account's, and what an
account's own plan or operator-set overrides allow bounds every key in it.

Globs (`*`, `?`, `[...]`, case-insensitive) match a model's catalog id, each of its aliases and
`<provider>/<upstream name>`, so `openai/*` names every model served by the provider `openai`.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from policies.catalog import ENDPOINTS, Model

ACCESS_FIELDS = ("models", "deny_models", "endpoints")
MAX_PATTERNS = 100
MAX_PATTERN_LENGTH = 200


class AccessError(ValueError):
    """An invalid access-list field; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"'{field}': {message}")
        self.field = field
        self.message = message


def validate_access(name: str, value: Any) -> list[str]:
    """Check one access-list field's value: a list of globs, or of client API names."""
    if not isinstance(value, list):
        raise AccessError(name, "expected an array of strings")
    if len(value) > MAX_PATTERNS:
        raise AccessError(name, f"at most {MAX_PATTERNS} entries")
    out: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item or len(item) > MAX_PATTERN_LENGTH:
            raise AccessError(name, f"each entry a string of 1 to {MAX_PATTERN_LENGTH} characters")
        if name == "endpoints" and item not in ENDPOINTS:
            raise AccessError(name, f"unknown client API '{item}'; one of {list(ENDPOINTS)}")
        out.append(item if name == "endpoints" else item.lower())
    return out


def model_names(model: Model) -> tuple[str, ...]:
    """The names a glob is matched against, lower-cased."""
    names = (model.id, *model.aliases, f"{model.provider}/{model.upstream}")
    return tuple(dict.fromkeys(n.lower() for n in names))


def _matches(patterns: Sequence[str], names: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(n, p) for p in patterns for n in names)


@dataclass(frozen=True, slots=True)
class ScopeAccess:
    """One scope's lists (None: that list is not set, so it limits nothing)."""

    models: tuple[str, ...] | None = None
    deny_models: tuple[str, ...] = ()
    endpoints: tuple[str, ...] | None = None

    def allows_model(self, names: Sequence[str]) -> bool:
        """Whether a model known by `names` passes this scope's lists."""
        if self.models is not None and not _matches(self.models, names):
            return False
        return not _matches(self.deny_models, names)


# A scope that sets no list (most of them): one shared value, compared by identity first.
OPEN_SCOPE = ScopeAccess()


def scope_access(values: Mapping[str, Any]) -> ScopeAccess:
    """A scope's lists from its merged table (a plan's values with overrides on top)."""
    allow, deny, endpoints = (values.get(f) for f in ACCESS_FIELDS)
    if allow is None and not deny and endpoints is None:
        return OPEN_SCOPE
    return ScopeAccess(
        models=tuple(allow) if allow is not None else None,
        deny_models=tuple(deny or ()),
        endpoints=tuple(endpoints) if endpoints is not None else None,
    )


@dataclass(frozen=True, slots=True)
class Access:
    """A caller's access: the intersection of its scopes' lists."""

    scopes: tuple[ScopeAccess, ...] = ()

    @property
    def unrestricted(self) -> bool:
        """True when no scope sets any list."""
        return all(s is OPEN_SCOPE or s == OPEN_SCOPE for s in self.scopes)

    def allows_model(self, model: Model) -> bool:
        """Whether every scope allows the model."""
        if self.unrestricted:
            return True
        names = model_names(model)
        return all(s.allows_model(names) for s in self.scopes)

    def allows_endpoint(self, endpoint: str) -> bool:
        """Whether every scope allows the client API."""
        return all(s.endpoints is None or endpoint in s.endpoints for s in self.scopes)

    def endpoints(self) -> list[str]:
        """The client APIs every scope allows, in the catalog's order."""
        return [e for e in ENDPOINTS if self.allows_endpoint(e)]


UNRESTRICTED = Access()
