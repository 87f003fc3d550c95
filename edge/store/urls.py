"""Store URLs of the three Redis modes, parsed without the driver: one server (`redis://`,
`rediss://`, `unix://`), a Sentinel-managed master (`redis+sentinel://`) and a Redis Cluster
(`redis+cluster://`); an `s` after `redis` means TLS to the data nodes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

Mode = Literal["single", "sentinel", "cluster"]

SCHEMES: dict[str, tuple[Mode, bool]] = {
    "redis": ("single", False),
    "rediss": ("single", True),
    "unix": ("single", False),
    "redis+sentinel": ("sentinel", False),
    "rediss+sentinel": ("sentinel", True),
    "redis+cluster": ("cluster", False),
    "rediss+cluster": ("cluster", True),
}
SENTINEL_PORT = 26379
CLUSTER_PORT = 6379


class StoreURLError(ValueError):
    """A store URL this gateway cannot use."""


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """Where the Redis data lives and how to reach it."""

    mode: Mode
    url: str  # the URL as given (a single server's is handed to redis-py as is)
    tls: bool = False
    nodes: tuple[tuple[str, int], ...] = ()  # sentinels or cluster seed nodes
    master: str = ""  # the Sentinel master's name
    db: int = 0
    username: str | None = None
    password: str | None = None
    # Sentinels often have their own password (and TLS is then theirs too).
    sentinel_username: str | None = None
    sentinel_password: str | None = None
    options: dict[str, str] = field(default_factory=dict)


def _nodes(hosts: str, default_port: int) -> tuple[tuple[str, int], ...]:
    out = []
    for part in hosts.split(","):
        part = part.strip()
        if not part:
            continue
        if part.startswith("["):  # an IPv6 literal: [::1]:26379
            host, _, rest = part[1:].partition("]")
            port = rest.lstrip(":")
        else:
            host, _, port = part.rpartition(":") if ":" in part else (part, "", "")
        try:
            out.append((host, int(port) if port else default_port))
        except ValueError:
            raise StoreURLError(f"bad port in {part!r}") from None
    if not out:
        raise StoreURLError("no host given")
    return tuple(out)


def parse_store_url(url: str) -> RedisTarget:
    """The target a Redis store URL names; raises StoreURLError."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in SCHEMES:
        raise StoreURLError(f"unsupported scheme in {url!r}")
    mode, tls = SCHEMES[scheme]
    if mode == "single":
        return RedisTarget("single", url, tls=tls)
    # urlsplit cannot take several hosts in one netloc: split the user part off by hand.
    parts = urlsplit("x://" + rest)
    netloc = parts.netloc
    userinfo, at, hosts = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    path = [unquote(p) for p in parts.path.split("/") if p]
    if mode == "sentinel":
        if not path:
            raise StoreURLError("redis+sentinel:// needs the master's name: .../<master>/<db>")
        try:
            db = int(path[1]) if len(path) > 1 else 0
        except ValueError:
            raise StoreURLError(f"bad database number {path[1]!r}") from None
        return RedisTarget(
            "sentinel",
            url,
            tls=tls,
            nodes=_nodes(hosts, SENTINEL_PORT),
            master=path[0],
            db=db,
            username=username,
            password=password,
            sentinel_username=query.pop("sentinel_username", None),
            sentinel_password=query.pop("sentinel_password", None),
            options=query,
        )
    if path and path != ["0"]:
        raise StoreURLError("a Redis Cluster has database 0 only")
    return RedisTarget(
        "cluster",
        url,
        tls=tls,
        nodes=_nodes(hosts, CLUSTER_PORT),
        username=username,
        password=password,
        options=query,
    )
