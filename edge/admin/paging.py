"""Cursor pages of admin listings: `limit` records at most, after the cursor `after`, filtered as
they are read from the store's id-ordered index. A filter that matches little costs a bounded
read per request: past `SCAN_BUDGET` records the page ends early with its cursor, and the next
request goes on from there."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from aiohttp import web

from edge.admin.validate import field_error

T = TypeVar("T")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
SCAN_BUDGET = 5000  # records read for one page at most, whatever the filters
CURSOR = re.compile(r"[A-Za-z0-9_-]{1,64}")

Fetch = Callable[[str | None, int], Awaitable[Sequence[T]]]


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page and where the next begins (None: this was the last)."""

    items: list[T]
    next_cursor: str | None


def page_params(request: web.Request) -> tuple[str | None, int]:
    """(after, limit) from the query, validated (400 naming the parameter)."""
    raw = request.query.get("limit")
    limit = DEFAULT_LIMIT
    if raw is not None:
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
            raise field_error("limit", f"an integer from 1 to {MAX_LIMIT}")
        limit = int(raw)
    after = request.query.get("after")
    if after is not None and not CURSOR.fullmatch(after):
        raise field_error("after", "the next_cursor of a previous page")
    return after, limit


async def collect(
    fetch: Fetch[T],
    ident: Callable[[T], str],
    keep: Callable[[T], bool],
    after: str | None,
    limit: int,
) -> Page[T]:
    """Read the index from `after` until `limit` records pass `keep`, the index ends, or the
    scan budget is spent."""
    items: list[T] = []
    read = 0
    cursor = after
    size = min(MAX_LIMIT, max(limit, 100))
    while read < SCAN_BUDGET:
        batch = await fetch(cursor, size)
        for position, record in enumerate(batch, 1):
            read += 1
            cursor = ident(record)
            if keep(record):
                items.append(record)
                if len(items) == limit:
                    ended = position == len(batch) < size  # nothing after it in the index
                    return Page(items, None if ended else cursor)
        if len(batch) < size:
            return Page(items, None)  # the index ended
    return Page(items, cursor)


def page_body(data: list[object], page: Page[T]) -> dict[str, object]:
    """The listing's JSON: OpenAI's list shape plus the cursor."""
    return {
        "object": "list",
        "data": data,
        "has_more": page.next_cursor is not None,
        "next_cursor": page.next_cursor,
    }
