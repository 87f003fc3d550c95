"""`edge admin ...`: the admin API from the command line (tables by default, --json for scripts).

The base URL and admin token come from --url/--token, else EDGE_URL/EDGE_ADMIN_TOKEN.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from edge.cli_admin_render import render
from edge.settings import admin_client_env
from policies.access import ACCESS_FIELDS

PREFIX = "/admin/v1"


class AdminError(Exception):
    """The admin API refused a call, or could not be reached."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _open(url: str, token: str | None, method: str, path: str, body: Any, timeout: float) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{url}{PREFIX}{path}", data=data, method=method)  # noqa: S310
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            message = json.loads(raw)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = raw.decode(errors="replace")[:500] or exc.reason
        raise AdminError(f"HTTP {exc.code}: {message}", 1) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise AdminError(f"cannot reach {url}: {exc}", 2) from exc


def call(url: str, token: str | None, method: str, path: str, body: Any = None) -> Any:
    """One admin API call; returns the decoded JSON answer."""
    with _open(url, token, method, path, body, 30) as resp:
        try:
            return json.loads(resp.read() or b"null")
        except OSError as exc:
            raise AdminError(f"cannot reach {url}: {exc}", 2) from exc


PROGRESS_EVERY = 10_000  # rows between two progress lines of an export


def export(url: str, token: str | None, args: argparse.Namespace) -> int:
    """`edge admin usage-export`: stream the export to a file or stdout, with progress lines
    on stderr for long ones."""
    query = {
        "from": args.start,
        "to": args.end,
        "group_by": args.group_by,
        "format": args.format,
        "account": args.account,
    }
    path = "/usage/export?" + urllib.parse.urlencode({k: v for k, v in query.items() if v})
    rows = 0
    with contextlib.ExitStack() as stack:
        resp = stack.enter_context(_open(url, token, "GET", path, None, 300))
        out = sys.stdout.buffer
        if args.output:
            out = stack.enter_context(Path(args.output).open("wb"))
        try:
            for line in resp:
                out.write(line)
                rows += 1
                if rows % PROGRESS_EVERY == 0:
                    print(f"edge admin: {rows} rows exported...", file=sys.stderr)
        except (http.client.IncompleteRead, OSError) as exc:
            raise AdminError(f"the export was cut after {rows} lines: {exc}", 1) from exc
    header = 1 if args.format == "csv" else 0
    print(f"edge admin: rows exported: {rows - header}", file=sys.stderr)
    return 0


def _value(raw: str) -> Any:
    """A quota value from FIELD=VALUE: an integer, a number, null ("none"), or a word."""
    if raw.lower() in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            continue
    return raw


def _assignments(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise AdminError(f"expected FIELD=VALUE, got {pair!r}", 2)
        if name in ACCESS_FIELDS and raw.lower() not in ("none", "null"):
            # An access list: comma-separated globs or client APIs (empty: allow none).
            out[name] = [item.strip() for item in raw.split(",") if item.strip()]
        else:
            out[name] = _value(raw)
    return out


def _target(args: argparse.Namespace) -> str:
    if args.key:
        return f"/keys/{urllib.parse.quote(args.key, safe='')}"
    return f"/accounts/{urllib.parse.quote(args.account, safe='')}"


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _request(args: argparse.Namespace) -> tuple[str, str, Any]:
    """(method, path, body) of the chosen command."""
    group, action = args.group, str(getattr(args, "action", ""))
    if group == "accounts":
        if action == "create":
            return (
                "POST",
                "/accounts",
                {"id": args.id, **({"plan": args.plan} if args.plan else {})},
            )
        if action == "list":
            filters = {"status": args.status, "plan": args.plan}
            return "GET", f"/accounts?{_listing(filters, args.page_size)}", None
        if action == "get":
            return "GET", f"/accounts/{_q(args.id)}", None
        if action == "plan":
            return "PUT", f"/accounts/{_q(args.id)}/plan", {"plan": args.plan}
        body = {"reason": args.reason} if getattr(args, "reason", None) else None
        return "POST", f"/accounts/{_q(args.id)}/{action}", body
    if group == "branches":
        base = f"/accounts/{_q(args.account)}/branches"
        if action == "create":
            return "POST", base, {"id": args.id, "parent": args.parent}
        if action == "list":
            return "GET", base, None
        return "DELETE", f"{base}/{_q(args.id)}", None
    if group == "keys":
        return _keys(args, action)
    if group == "quota":
        if action == "get":
            return "GET", f"{_target(args)}/quota", None
        if action == "set":
            return "PUT", f"{_target(args)}/quota", _assignments(args.limits)
        return "DELETE", f"{_target(args)}/quota", None
    if group == "usage":
        return "GET", f"{_target(args)}/usage", None
    if group == "plans":
        return "GET", "/plans", None
    query = {"limit": str(args.limit)}
    if args.account:
        query["account"] = args.account
    return "GET", f"/audit?{urllib.parse.urlencode(query)}", None


def _listing(filters: dict[str, Any], page_size: int) -> str:
    query = {k: v for k, v in filters.items() if v is not None}
    return urllib.parse.urlencode({**query, "limit": str(page_size)})


def _all_pages(url: str, token: str, path: str, first: Any) -> Any:
    """A listing with every page after the first appended (the API pages by cursor)."""
    answer = first
    while isinstance(answer, dict) and answer.get("next_cursor"):
        more = call(url, token, "GET", f"{path}&after={_q(answer['next_cursor'])}")
        answer["data"] += more["data"]
        answer["next_cursor"] = more.get("next_cursor")
        answer["has_more"] = more.get("has_more", False)
        if answer["next_cursor"] and sys.stderr.isatty():
            print(f"edge admin: {len(answer['data'])} so far...", file=sys.stderr)
    return answer


def _keys(args: argparse.Namespace, action: str) -> tuple[str, str, Any]:
    if action == "create":
        body: dict[str, Any] = {"account": args.account, "scopes": args.scope or None}
        body.update({"branch": args.branch, "name": args.name, "plan": args.plan})
        return "POST", "/keys", {k: v for k, v in body.items() if v is not None}
    if action == "list":
        filters = {k: getattr(args, k) for k in ("account", "branch", "name", "status")}
        return "GET", f"/keys?{_listing(filters, args.page_size)}", None
    if action == "get":
        return "GET", f"/keys/{_q(args.id)}", None
    if action == "revoke":
        return "DELETE", f"/keys/{_q(args.id)}", None
    if action == "plan":
        plan = None if args.plan.lower() == "none" else args.plan
        return "PUT", f"/keys/{_q(args.id)}/plan", {"plan": plan}
    grace = {"grace_seconds": args.grace} if args.grace is not None else None
    return "POST", f"/keys/{_q(args.id)}/rotate", grace


def run_admin(args: argparse.Namespace) -> int:
    """Run one `edge admin` command; exit 0, 1 (refused, or output closed) or 2 (usage, network)."""
    env_url, env_token = admin_client_env()
    url = (args.url or env_url).rstrip("/")
    token = args.token or env_token
    if not token:
        print(
            "edge admin: no admin token: set EDGE_ADMIN_TOKEN or pass --token "
            "(the gateway's admin token, or an API key with the ai_gateway:admin scope)",
            file=sys.stderr,
        )
        return 2
    try:
        if args.group == "usage-export":
            return export(url, token, args)
        method, path, body = _request(args)
        answer = call(url, token, method, path, body)
        if method == "GET" and getattr(args, "action", None) == "list":
            answer = _all_pages(url, token, path, answer)
    except AdminError as exc:
        print(f"edge admin: {exc}", file=sys.stderr)
        return exc.code
    text = json.dumps(answer, indent=2, sort_keys=True) if args.json else render(args.group, answer)
    return write_out(text)


def write_out(text: str) -> int:
    """Print text; 1 without a traceback if the reader has gone (`edge admin ... | head`)."""
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # Python's documented way (signal module, "Note on SIGPIPE"): what is still buffered
        # goes to devnull, so the flush at exit cannot raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    return 0


def _scope_arg(parser: argparse.ArgumentParser) -> None:
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--key", help="key id")
    who.add_argument("--account", help="account id")


GLOBAL_FLAGS = ("--url", "--token")


def hoist_admin_flags(argv: list[str]) -> list[str]:
    """Move `edge admin`'s own flags next to `admin`, so they may also follow the command."""
    if not argv or argv[0] != "admin":
        return argv
    front: list[str] = []
    rest: list[str] = []
    args = iter(argv[1:])
    for arg in args:
        if arg == "--json" or arg.startswith(tuple(f + "=" for f in GLOBAL_FLAGS)):
            front.append(arg)
        elif arg in GLOBAL_FLAGS:
            front += [arg, next(args, "")]
        else:
            rest.append(arg)
    return ["admin", *front, *rest]


def add_admin_parser(sub: Any) -> None:
    """Register `edge admin` on the top-level subcommands."""
    admin = sub.add_parser("admin", help="administer accounts, keys, quotas (admin API)")
    admin.add_argument("--url", help="gateway base URL (default: $EDGE_URL)")
    admin.add_argument("--token", help="admin token or admin key (default: $EDGE_ADMIN_TOKEN)")
    admin.add_argument("--json", action="store_true", help="print the API's JSON")
    admin.set_defaults(func=run_admin)
    groups = admin.add_subparsers(dest="group", required=True)

    accounts = groups.add_parser("accounts", help="accounts").add_subparsers(
        dest="action", required=True
    )
    create = accounts.add_parser("create")
    create.add_argument("id")
    create.add_argument("--plan")
    listing = accounts.add_parser("list", help="every account, a page at a time")
    listing.add_argument("--status", choices=("active", "blocked"))
    listing.add_argument("--plan")
    listing.add_argument("--page-size", type=int, default=100, help=argparse.SUPPRESS)
    accounts.add_parser("get").add_argument("id")
    plan = accounts.add_parser("plan", help="set the account's plan")
    plan.add_argument("id")
    plan.add_argument("plan")
    for name in ("block", "unblock"):
        cmd = accounts.add_parser(name)
        cmd.add_argument("id")
        cmd.add_argument("--reason")

    branches = groups.add_parser("branches", help="branches").add_subparsers(
        dest="action", required=True
    )
    create = branches.add_parser("create")
    create.add_argument("account")
    create.add_argument("id")
    create.add_argument("--parent")
    branches.add_parser("list").add_argument("account")
    delete = branches.add_parser("delete", help="delete a leaf branch")
    delete.add_argument("account")
    delete.add_argument("id")

    keys = groups.add_parser("keys", help="API keys").add_subparsers(dest="action", required=True)
    create = keys.add_parser("create", help="create a key (the secret is printed once)")
    create.add_argument("--account", required=True)
    create.add_argument("--branch")
    create.add_argument("--name")
    create.add_argument("--plan")
    create.add_argument("--scope", action="append", help="repeatable; default ai_gateway:invoke")
    listing = keys.add_parser("list", help="every key, a page at a time")
    listing.add_argument("--account")
    listing.add_argument("--branch")
    listing.add_argument("--name")
    listing.add_argument("--status", choices=("active", "revoked"))
    listing.add_argument("--page-size", type=int, default=100, help=argparse.SUPPRESS)
    keys.add_parser("get").add_argument("id")
    keys.add_parser("revoke").add_argument("id")
    rotate = keys.add_parser("rotate", help="new secret; the old one stays valid for --grace")
    rotate.add_argument("id")
    rotate.add_argument("--grace", type=int, help="seconds the old secret stays valid")
    plan = keys.add_parser("plan", help="set the key's own plan ('none' to clear)")
    plan.add_argument("id")
    plan.add_argument("plan")

    quota = groups.add_parser("quota", help="quota overrides").add_subparsers(
        dest="action", required=True
    )
    _scope_arg(quota.add_parser("get"))
    put = quota.add_parser("set", help="replace the overrides: FIELD=VALUE ... (none: no limit)")
    _scope_arg(put)
    put.add_argument("limits", nargs="*", metavar="FIELD=VALUE")
    _scope_arg(quota.add_parser("clear", help="remove the overrides"))

    _scope_arg(groups.add_parser("usage", help="usage and remaining allowance"))
    dump = groups.add_parser(
        "usage-export", help="usage per account, key, model and day, streamed as CSV or JSONL"
    )
    dump.add_argument("--from", dest="start", help="first UTC day, YYYY-MM-DD")
    dump.add_argument("--to", dest="end", help="last UTC day, YYYY-MM-DD (default today)")
    dump.add_argument("--group-by", default="account,day", help="of account,key,model,day")
    dump.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    dump.add_argument("--account")
    dump.add_argument("--output", "-o", help="a file (default: standard output)")
    groups.add_parser("plans", help="the configured plans")
    audit = groups.add_parser("audit", help="the audit log, newest first")
    audit.add_argument("--account")
    audit.add_argument("--limit", type=int, default=50)
