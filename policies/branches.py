"""Branch lineage: a credential bound to branch B may act on B and its descendants only."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_HOST_PATTERN = r"^(?P<branch>br-[a-z0-9][a-z0-9-]*?)-api\."
# Matched whole (fullmatch): with `$`, an id ending in a newline matched too.
BRANCH_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
MAX_DEPTH = 64  # bounds the walk even if a store held a cycle


def branch_from_host(host: str, pattern: re.Pattern[str]) -> str | None:
    """The branch named by a Host header, if the pattern matches."""
    match = pattern.match(host.lower())
    return match.group("branch") if match else None


def in_lineage(parents: Mapping[str, str | None], bound: str, requested: str) -> bool:
    """True when `requested` is `bound` or one of its descendants, given child -> parent links."""
    current: str | None = requested
    for _ in range(MAX_DEPTH):
        if current is None or current not in parents:
            return False
        if current == bound:
            return True
        current = parents[current]
    return False


@dataclass(frozen=True, slots=True)
class Lineage:
    """What a credential reaches: everything of its account when unbound (`bound` None), else
    its bound branch and that branch's descendants, given the account's child -> parent links."""

    bound: str | None
    parents: Mapping[str, str | None]

    def covers(self, branch: str | None) -> bool:
        """Whether something on `branch` is within reach; `None` means account-wide (an unbound
        key, a root branch's parent, a response stored before responses recorded a branch),
        which only an unbound credential reaches."""
        if self.bound is None:
            return True
        return branch is not None and in_lineage(self.parents, self.bound, branch)


def valid_branch_id(branch_id: str) -> bool:
    """Branch ids are short, URL- and host-safe names."""
    return BRANCH_ID_RE.fullmatch(branch_id) is not None
