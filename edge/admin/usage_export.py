"""GET /admin/v1/usage/export: usage per account, key, model and day (any grouping of those)
over a date range within retention, as CSV or JSON lines, streamed.

The rows are read one account at a time from its daily detail hashes (one per account and UTC
day, written by each call's settle with the cost priced when the call was made), so memory holds
one account's groups, never the table: with `account` in `group_by` (implied by `key`) each
account's rows are written as soon as it is read. Without it, rows are totals over all accounts
by model and/or day, a set as small as the catalog times the range.

An admin bound to a branch sees the usage of the keys in its branch and its descendants only,
in every grouping: another branch's keys, and their spending, are not its to read.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from edge.admin.access import lineage, principal, require_account_access
from edge.admin.accounts import load_account
from edge.admin.validate import field_error
from edge.appkeys import SETTINGS, STORE
from edge.store import StoreUnavailable
from edge.store.usage import FIELDS, split_detail

log = logging.getLogger(__name__)
GROUPS = ("account", "key", "model", "day")
FORMATS = {"csv": "text/csv", "jsonl": "application/x-ndjson"}
DAYS_PER_READ = 31  # detail hashes read in one round trip
Group = tuple[str, ...]
Reach = Callable[[str], Awaitable[bool]]


def _day(request: web.Request, name: str, default: dt.date) -> dt.date:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        return dt.date.fromisoformat(raw)
    except ValueError as exc:
        raise field_error(name, "a day as YYYY-MM-DD") from exc


def _params(request: web.Request) -> tuple[list[str], tuple[str, ...], str]:
    """(days, group_by, format), validated against the retention the gateway keeps."""
    today = dt.datetime.now(dt.UTC).date()
    retention = request.app[SETTINGS].quota.usage_retention_days
    last = _day(request, "to", today)
    first = _day(request, "from", last - dt.timedelta(days=29))
    oldest = today - dt.timedelta(days=retention - 1)
    if first > last:
        raise field_error("from", "on or before 'to'")
    if first < oldest:
        raise field_error("from", f"within retention: {retention} days, so {oldest} or later")
    if last > today:
        raise field_error("to", f"today ({today}) or earlier")
    wanted = [g.strip() for g in request.query.get("group_by", "account,day").split(",")]
    unknown = [g for g in wanted if g not in GROUPS]
    if unknown or not wanted:
        raise field_error("group_by", f"a comma-separated list of {', '.join(GROUPS)}")
    if "key" in wanted and "account" not in wanted:
        wanted.insert(0, "account")  # a key belongs to one account: its rows stream by account
    group_by = tuple(g for g in GROUPS if g in wanted)
    kind = request.query.get("format", "jsonl")
    if kind not in FORMATS:
        raise field_error("format", "csv or jsonl")
    days = [(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
    return days, group_by, kind


async def _accounts(request: web.Request) -> AsyncIterator[str]:
    """The accounts to read: the one asked for (or the caller's own), else all, by pages."""
    asked = request.query.get("account") or principal(request).account
    if asked is not None:
        require_account_access(request, asked)
        yield (await load_account(request, asked)).id
        return
    identity = request.app[STORE].identity
    after = None
    while True:
        page = await identity.list_accounts(after, 1000)
        for account in page:
            yield account.id
        if len(page) < 1000:
            return
        after = page[-1].id


async def _reach(request: web.Request) -> Reach | None:
    """For an admin bound to a branch, whether a key id is in its lineage (each key read once
    per export); None for an admin who reaches its whole account or every account."""
    if principal(request).branch is None:
        return None
    scope = await lineage(request)
    identity = request.app[STORE].identity
    known: dict[str, bool] = {}

    async def reaches(key_id: str) -> bool:
        if key_id not in known:
            record = await identity.get_key(key_id) if key_id else None
            known[key_id] = record is not None and scope.covers(record.branch)
        return known[key_id]

    return reaches


async def _groups(
    request: web.Request,
    account: str,
    days: list[str],
    group_by: tuple[str, ...],
    reach: Reach | None = None,
) -> dict[Group, dict[str, int]]:
    """One account's counters over the days, summed per group (of the keys `reach` allows)."""
    usage = request.app[STORE].usage
    found: dict[Group, dict[str, int]] = {}
    for start in range(0, len(days), DAYS_PER_READ):
        chunk = days[start : start + DAYS_PER_READ]
        for day, fields in (await usage.detail(account, chunk)).items():
            for name, amount in fields.items():
                parsed = split_detail(name)
                if parsed is None or parsed[2] not in FIELDS:
                    continue
                key, model, field = parsed
                if reach is not None and not await reach(key):
                    continue
                values = {"account": account, "key": key, "model": model, "day": day}
                group = tuple(values[g] for g in group_by)
                counts = found.setdefault(group, dict.fromkeys(FIELDS, 0))
                counts[field] += amount
    return found


def _row(group_by: tuple[str, ...], group: Group, counts: dict[str, int]) -> dict[str, Any]:
    row: dict[str, Any] = dict(zip(group_by, group, strict=True))
    row.update(counts)
    row["cost_usd"] = round(counts["cost_micros"] / 1_000_000, 6)
    return row


class _Writer:
    """Rows to the response in the asked format."""

    def __init__(self, response: web.StreamResponse, kind: str, columns: list[str]) -> None:
        self.response = response
        self.kind = kind
        self.columns = columns
        self.rows = 0

    async def header(self) -> None:
        if self.kind == "csv":
            await self.response.write(self._csv([self.columns]))

    def _csv(self, rows: list[list[Any]]) -> bytes:
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(rows)
        return out.getvalue().encode()

    async def write(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        if self.kind == "csv":
            data = self._csv([[row[c] for c in self.columns] for row in rows])
        else:
            data = b"".join(orjson.dumps(row) + b"\n" for row in rows)
        self.rows += len(rows)
        await self.response.write(data)


async def export_usage(request: web.Request) -> web.StreamResponse:
    """GET /admin/v1/usage/export?from=&to=&group_by=&format=&account=."""
    days, group_by, kind = _params(request)
    accounts = _accounts(request)
    first = await anext(accounts, None)  # a 404 or a store failure still answers as JSON
    reach = await _reach(request)
    response = web.StreamResponse(
        headers={
            "Content-Type": FORMATS[kind],
            "Content-Disposition": f'attachment; filename="usage-{days[0]}-{days[-1]}.{kind}"',
        }
    )
    await response.prepare(request)
    writer = _Writer(response, kind, [*group_by, *FIELDS, "cost_usd"])
    await writer.header()
    totals: dict[Group, dict[str, int]] = {}
    try:
        account = first
        while account is not None:
            groups = await _groups(request, account, days, group_by, reach)
            if "account" in group_by:
                await writer.write([_row(group_by, g, c) for g, c in sorted(groups.items())])
            else:
                for group, counts in groups.items():
                    into = totals.setdefault(group, dict.fromkeys(FIELDS, 0))
                    for name, amount in counts.items():
                        into[name] += amount
            account = await anext(accounts, None)
        await writer.write([_row(group_by, g, c) for g, c in sorted(totals.items())])
    except StoreUnavailable as exc:
        # The status has gone out: the export ends without its final chunk, so no client takes
        # a cut table for a whole one.
        log.warning("usage export cut after %d rows: %s", writer.rows, exc)
        raise ConnectionResetError("usage export interrupted") from exc
    await response.write_eof()
    return response
