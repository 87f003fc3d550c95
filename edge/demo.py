"""`edge serve --demo`: a ready-to-use account, branch and invoke key on the embedded store."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from edge.appkeys import SETTINGS, STORE
from edge.store.base import AlreadyExists
from edge.store.records import Account, Branch, KeyRecord
from policies.credentials import SCOPE_INVOKE, hash_key, new_api_key

DEMO_ACCOUNT = "demo"
DEMO_BRANCH = "br-main"


@dataclass(frozen=True, slots=True)
class DemoCredentials:
    """What `make run` prints."""

    admin_token: str | None
    invoke_key: str


async def bootstrap_demo(app: web.Application) -> DemoCredentials:
    """Create the demo account, branch and a fresh invoke key."""
    store = app[STORE]
    settings = app[SETTINGS]
    with contextlib.suppress(AlreadyExists):
        await store.identity.create_account(Account(id=DEMO_ACCOUNT))
    with contextlib.suppress(AlreadyExists):
        await store.identity.create_branch(Branch(id=DEMO_BRANCH, account=DEMO_ACCOUNT))
    key_id, secret = new_api_key()
    await store.identity.create_key(
        KeyRecord(
            id=key_id,
            account=DEMO_ACCOUNT,
            hash=hash_key(settings.hmac_secret, secret),
            scopes=[SCOPE_INVOKE],
            branch=DEMO_BRANCH,
            name="demo",
        )
    )
    return DemoCredentials(admin_token=settings.admin_token, invoke_key=secret)


def write_env_file(path: Path, base_url: str, creds: DemoCredentials) -> None:
    """Write `export` lines a second shell can `source` (owner-readable only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"export EDGE_URL={base_url}", f"export EDGE_KEY={creds.invoke_key}"]
    if creds.admin_token:
        lines.append(f"export EDGE_ADMIN_TOKEN={creds.admin_token}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(lines) + "\n")
