"""The store's interfaces: one per domain, each with a memory and a Redis implementation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from edge.store.records import Account, Branch, KeyRecord


class StoreUnavailable(Exception):
    """The shared store could not be reached in time, or refused the call."""


class StoreTimeout(StoreUnavailable):
    """The store did not answer in time: it may be down, or only this process busy."""


class StoreDisconnected(StoreUnavailable):
    """The store refused or dropped the connection."""


class AlreadyExists(Exception):
    """A record with that id exists."""


# Records one listing call returns at most: index pages, never a scan of the keyspace.
PAGE = 1000


class IdentityStore(Protocol):
    """Accounts, branches and keys."""

    async def create_account(self, account: Account) -> None:
        """Insert; raises AlreadyExists."""

    async def get_account(self, account_id: str) -> Account | None:
        """Fetch one account."""

    async def put_account(self, account: Account) -> None:
        """Replace an existing account."""

    async def list_accounts(self, after: str | None = None, limit: int = PAGE) -> list[Account]:
        """Up to `limit` accounts in id order, those after the id `after`."""

    async def create_branch(self, branch: Branch) -> None:
        """Insert; raises AlreadyExists."""

    async def delete_branch(self, account_id: str, branch_id: str) -> None:
        """Remove one branch."""

    async def branches(self, account_id: str) -> dict[str, Branch]:
        """An account's branches by id."""

    async def create_key(self, key: KeyRecord) -> None:
        """Insert; raises AlreadyExists."""

    async def get_key(self, key_id: str) -> KeyRecord | None:
        """Fetch one key."""

    async def put_key(self, key: KeyRecord) -> None:
        """Replace an existing key."""

    async def list_keys(
        self, account_id: str | None, after: str | None = None, limit: int = PAGE
    ) -> list[KeyRecord]:
        """Up to `limit` keys (of one account, or of all) in id order, after the id `after`."""


Listener = Callable[[str], Awaitable[None] | None]


class Invalidation(Protocol):
    """Cross-replica cache invalidation: publish a topic, every process's listeners hear it."""

    async def publish(self, topic: str) -> None:
        """Tell every process that `topic` changed."""

    def subscribe(self, listener: Listener) -> None:
        """Register a listener called with each topic (and with "*" after a reconnect)."""
