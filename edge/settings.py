"""The one place that reads the environment: EDGE_* variables, provider credentials, EDGE_CONFIG."""

from __future__ import annotations

import os
import re
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from policies.branches import DEFAULT_HOST_PATTERN
from policies.catalog import Catalog, CatalogError, build_catalog, default_catalog_data
from policies.jwt_issuers import Issuer, IssuerConfigError, parse_issuers
from policies.quota_plans import PlanError, Plans, build_plans, default_plans_data

BODY_LIMIT = 32 * 1024 * 1024
# Where /metrics and the probes are served unless told otherwise: a port of their own, so the
# client port never shows them. Not 9090, which Prometheus itself listens on.
DEFAULT_METRICS_PORT = 9464
# How `--metrics-port` / EDGE_METRICS_PORT say "on the client port, as before".
SAME_PORT = "same"
# A configured secret shorter than this is not looked for in provider messages (it would match
# ordinary words); real keys and tokens are far longer.
MIN_SECRET_LENGTH = 8


class SettingsError(ValueError):
    """The configuration cannot be used; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Upstream timeouts in seconds."""

    connect: float = 10.0
    headers: float = 120.0  # until the upstream's status line and headers arrive
    idle: float = 300.0  # between two chunks of a streamed body


@dataclass(frozen=True, slots=True)
class Shutdown:
    """What SIGTERM does, in seconds."""

    # Serve normally after the signal while load balancers remove the replica (they race it).
    grace: float = 3.0
    # Then refuse new requests and let open streams finish for at most this long.
    timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class Guards:
    """Bounds on what one client can hold: time to send a request, to read a stream, and how
    many requests the process takes on at once."""

    # From a connection's opening (or, between requests, a head's first byte) to the head's end.
    header_timeout: float = 15.0
    keepalive_timeout: float = 75.0  # an idle keep-alive connection is closed after this long
    body_timeout: float = 60.0  # to receive a whole request body
    # A stream whose client takes no byte for this long while output waits is dropped.
    stream_write_timeout: float = 30.0
    # A resume stream waiting for a background run's next event writes a comment this often.
    stream_keepalive: float = 15.0
    max_inflight: int = 4096  # requests at once before shedding with 503 (0: no limit)


@dataclass(frozen=True, slots=True)
class QuotaSettings:
    """Quota plans and what quotas do when the shared store fails."""

    plans: Plans = field(default_factory=lambda: build_plans(default_plans_data()))
    expected_replicas: int = 1  # each replica's share of a rate limit while Redis is down
    budgets_fail_open: bool = False  # token/cost limits unknown: admit (True) or 503 (False)
    reservation_ttl: float = 900.0  # an unsettled reservation (crashed replica) expires then
    rotation_grace: float = 3600.0  # default validity of a rotated key's previous secret
    usage_retention_days: int = 90  # days of usage counters kept (per key, account, model)
    leases: bool = True  # hot request-rate windows spent from per-replica slices (Redis only)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything configurable about a gateway process."""

    store_url: str = "memory://"
    admin_token: str | None = None
    hmac_secret: bytes = b""
    config_path: str | None = None
    catalog: Catalog = field(default_factory=lambda: build_catalog(default_catalog_data(), {}))
    issuers: tuple[Issuer, ...] = ()
    branch_host_pattern: re.Pattern[str] = re.compile(DEFAULT_HOST_PATTERN)
    config: Mapping[str, Any] = field(default_factory=dict)  # the raw TOML, for later sections
    host: str = "127.0.0.1"
    port: int = 8080
    body_limit: int = BODY_LIMIT
    timeouts: Timeouts = Timeouts()
    log_level: str = "INFO"
    upstream_body_limit: int = 64 * 1024 * 1024
    redis_timeout: float = 0.1
    responses_retention: float = 30 * 86400.0  # seconds a stored response is kept
    background_lease: float = 30.0  # seconds before a dead worker's background run is taken over
    background_concurrency: int = 8  # background runs one process executes at once
    shutdown: Shutdown = Shutdown()
    guards: Guards = Guards()
    metrics_token: str | None = None  # when set, /metrics wants `Authorization: Bearer <it>`
    # The port /metrics, /healthz and /readyz are served on; None: /metrics on the client port.
    metrics_port: int | None = DEFAULT_METRICS_PORT
    metrics_dir: str | None = None  # PROMETHEUS_MULTIPROC_DIR: several workers share one scrape
    store_startup_timeout: float = 10.0  # how long `edge serve` retries an unreachable store
    quota: QuotaSettings = field(default_factory=QuotaSettings)
    # Where budget alerts are POSTed, and the secret their signature is keyed with.
    alert_webhook_url: str | None = None
    alert_webhook_secret: bytes = b""

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with some fields replaced (CLI flags, tests)."""
        return replace(self, **changes)

    @property
    def secret_values(self) -> tuple[str, ...]:
        """Every configured secret, whatever its format: provider keys and credential headers,
        the admin and metrics tokens, the store's password. A provider that echoes one back in
        an error never gets it to a client."""
        found: list[str] = []
        for provider in self.catalog.providers.values():
            found.append(provider.api_key or "")
            found += [v for k, v in provider.headers.items() if _secret_header(k)]
        found += [self.admin_token or "", self.metrics_token or ""]
        found += _store_secrets(self.store_url)
        found.append(self.alert_webhook_secret.decode("utf-8"))
        unique = {v for v in found if len(v) >= MIN_SECRET_LENGTH}
        # Longest first, so a secret that contains another is removed whole.
        return tuple(sorted(unique, key=lambda v: (-len(v), v)))


def _secret_header(name: str) -> bool:
    """Whether a provider header carries a credential (its value is then a secret)."""
    lowered = name.lower()
    return any(word in lowered for word in ("auth", "key", "token", "secret"))


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}: expected a number, got {raw!r}") from exc
    if value <= 0:
        raise SettingsError(f"{name}: must be positive")
    return value


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    """A duration that may be zero."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise SettingsError(f"{name}: expected a number of seconds, got {raw!r}") from exc
    if value < 0:
        raise SettingsError(f"{name}: must not be negative")
    return value


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The environment a worker process starts with: this process's, plus `extra`."""
    return {**os.environ, **extra}


def parse_metrics_port(name: str, raw: str) -> int | None:
    """A metrics port as given on the command line or in EDGE_METRICS_PORT: a port number, or
    `same` (None) for /metrics on the client port."""
    if raw.strip().lower() == SAME_PORT:
        return None
    try:
        port = int(raw)
    except ValueError as exc:
        expected = f"expected a port number or '{SAME_PORT}'"
        raise SettingsError(f"{name}: {expected}, got {raw!r}") from exc
    if not 1 <= port <= 65535:
        raise SettingsError(f"{name}: a port is between 1 and 65535, got {port}")
    return port


def check_ports(settings: Settings) -> None:
    """SettingsError when the metrics port is the client port (say `same` for that)."""
    if settings.metrics_port == settings.port:
        raise SettingsError(
            f"the metrics port {settings.metrics_port} is the client port: give another port, "
            f"or '{SAME_PORT}' to serve /metrics on the client port"
        )


def _metrics_token(env: Mapping[str, str]) -> str | None:
    token = env.get("EDGE_METRICS_TOKEN") or None
    if token is not None and len(token) < 16:
        raise SettingsError("EDGE_METRICS_TOKEN: use at least 16 characters")
    return token


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on", "open"):
        return True
    if raw in ("0", "false", "no", "off", "closed"):
        return False
    raise SettingsError(f"{name}: expected true or false, got {raw!r}")


def _guards(env: Mapping[str, str]) -> Guards:
    raw = env.get("EDGE_MAX_INFLIGHT") or "4096"
    try:
        inflight = int(raw)
    except ValueError as exc:
        raise SettingsError(f"EDGE_MAX_INFLIGHT: expected a whole number, got {raw!r}") from exc
    if inflight < 0:
        raise SettingsError("EDGE_MAX_INFLIGHT: must not be negative (0: no limit)")
    return Guards(
        header_timeout=_float(env, "EDGE_HEADER_TIMEOUT", 15.0),
        keepalive_timeout=_float(env, "EDGE_KEEPALIVE_TIMEOUT", 75.0),
        body_timeout=_float(env, "EDGE_BODY_TIMEOUT", 60.0),
        stream_write_timeout=_float(env, "EDGE_STREAM_WRITE_TIMEOUT", 30.0),
        stream_keepalive=_float(env, "EDGE_STREAM_KEEPALIVE", 15.0),
        max_inflight=inflight,
    )


def _quota_settings(env: Mapping[str, str], config: Mapping[str, Any]) -> QuotaSettings:
    section = config.get("quota", {})
    if not isinstance(section, Mapping):
        raise SettingsError("EDGE_CONFIG [quota]: expected a table")
    try:
        plans = build_plans(default_plans_data(), section.get("plans"))
    except PlanError as exc:
        raise SettingsError(f"EDGE_CONFIG quota.{exc}") from exc
    policy = section.get("budgets_on_store_failure", "closed")
    if policy not in ("open", "closed"):
        raise SettingsError("quota.budgets_on_store_failure: 'open' or 'closed'")
    replicas = _float(env, "EDGE_EXPECTED_REPLICAS", float(section.get("expected_replicas", 1)))
    if replicas != int(replicas):
        raise SettingsError("EDGE_EXPECTED_REPLICAS: expected a whole number")
    retention = _float(
        env, "EDGE_USAGE_RETENTION_DAYS", float(section.get("usage_retention_days", 90))
    )
    if retention != int(retention) or not 1 <= retention <= 3660:
        raise SettingsError("EDGE_USAGE_RETENTION_DAYS: a whole number of days from 1 to 3660")
    return QuotaSettings(
        plans=plans,
        expected_replicas=int(replicas),
        budgets_fail_open=_flag(env, "EDGE_QUOTA_FAIL_OPEN", policy == "open"),
        reservation_ttl=_float(
            env, "EDGE_RESERVATION_TTL", float(section.get("reservation_ttl", 900.0))
        ),
        rotation_grace=_float(
            env, "EDGE_KEY_ROTATION_GRACE", float(section.get("rotation_grace", 3600.0))
        ),
        usage_retention_days=int(retention),
        leases=_flag(env, "EDGE_QUOTA_LEASES", bool(section.get("leases", True))),
    )


def admin_client_env(env: Mapping[str, str] | None = None) -> tuple[str, str | None]:
    """(base URL, admin token) the `edge admin` command uses unless flags say otherwise."""
    env = os.environ if env is None else env
    url = env.get("EDGE_URL") or "http://127.0.0.1:8080"
    return url.rstrip("/"), env.get("EDGE_ADMIN_TOKEN") or None


# The Secret template's value: a variable still holding it was never really set.
PLACEHOLDER = "REPLACE_ME"
_SECRET_SUFFIXES = ("_API_KEY", "_TOKEN", "_PASSWORD", "_SECRET", "_URL")


def _no_placeholders(env: Mapping[str, str]) -> None:
    for name, value in env.items():
        if PLACEHOLDER in value and (name.startswith("EDGE_") or name.endswith(_SECRET_SUFFIXES)):
            raise SettingsError(
                f"{name} still holds the Secret template's placeholder {PLACEHOLDER}: "
                "set a real value, or remove it"
            )


def _load_toml(path: str) -> dict[str, Any]:
    try:
        with Path(path).open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise SettingsError(f"EDGE_CONFIG: no such file {path!r}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"EDGE_CONFIG {path!r}: invalid TOML: {exc}") from exc


def _hmac_secret(env: Mapping[str, str], store_url: str) -> bytes:
    raw = env.get("EDGE_HMAC_SECRET", "")
    if raw:
        if len(raw) < 32:
            raise SettingsError("EDGE_HMAC_SECRET: use at least 32 characters")
        return raw.encode("utf-8")
    if store_url.startswith("memory://"):
        # Keys live only in this process, so a per-process secret loses nothing.
        return secrets.token_bytes(32)
    raise SettingsError(
        "EDGE_HMAC_SECRET is required with a shared store: every replica must hash keys alike"
    )


def _alert_webhook(env: Mapping[str, str]) -> dict[str, Any]:
    url = env.get("EDGE_ALERT_WEBHOOK_URL") or None
    secret = env.get("EDGE_ALERT_WEBHOOK_SECRET", "")
    if url is None:
        return {}
    if not url.startswith(("http://", "https://")):
        raise SettingsError("EDGE_ALERT_WEBHOOK_URL: an http:// or https:// URL")
    if len(secret) < 32:
        raise SettingsError(
            "EDGE_ALERT_WEBHOOK_SECRET: at least 32 characters (the receiver checks each "
            "alert's signature with it)"
        )
    return {"alert_webhook_url": url, "alert_webhook_secret": secret.encode("utf-8")}


# memory (one process), one Redis, a Sentinel-managed master, a Redis Cluster ("s": TLS).
STORE_SCHEMES = (
    "memory://",
    "redis://",
    "rediss://",
    "unix://",
    "redis+sentinel://",
    "rediss+sentinel://",
    "redis+cluster://",
    "rediss+cluster://",
)


def _store_secrets(url: str) -> list[str]:
    """The passwords a store URL carries: the data nodes' and the sentinels' own."""
    parts = urlsplit(url)
    userinfo, at, _ = parts.netloc.rpartition("@")
    found = [unquote(userinfo.partition(":")[2])] if at else []
    found += parse_qs(parts.query).get("sentinel_password", [])
    return found


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build settings from the environment (os.environ by default) and EDGE_CONFIG."""
    env = os.environ if env is None else env
    _no_placeholders(env)
    store_url = env.get("EDGE_STORE_URL") or "memory://"
    if not store_url.startswith(STORE_SCHEMES):
        raise SettingsError(f"EDGE_STORE_URL: unsupported scheme in {store_url!r}")
    config_path = env.get("EDGE_CONFIG") or None
    config = _load_toml(config_path) if config_path else {}
    try:
        catalog = build_catalog(default_catalog_data(), env, config.get("catalog"))
        issuers = parse_issuers(config.get("jwt", {}).get("issuers", []))
    except (CatalogError, IssuerConfigError, TypeError, KeyError) as exc:
        raise SettingsError(f"EDGE_CONFIG: {exc}") from exc
    pattern_src = config.get("branches", {}).get("host_pattern", DEFAULT_HOST_PATTERN)
    try:
        pattern = re.compile(pattern_src)
    except re.error as exc:
        raise SettingsError(f"branches.host_pattern: {exc}") from exc
    if "branch" not in pattern.groupindex:
        raise SettingsError("branches.host_pattern: needs a named group (?P<branch>...)")
    admin_token = env.get("EDGE_ADMIN_TOKEN") or None
    if admin_token is not None and len(admin_token) < 16:
        raise SettingsError("EDGE_ADMIN_TOKEN: use at least 16 characters")
    return Settings(
        store_url=store_url,
        admin_token=admin_token,
        hmac_secret=_hmac_secret(env, store_url),
        config_path=config_path,
        catalog=catalog,
        issuers=issuers,
        branch_host_pattern=pattern,
        config=config,
        timeouts=Timeouts(
            connect=_float(env, "EDGE_UPSTREAM_CONNECT_TIMEOUT", 10.0),
            headers=_float(env, "EDGE_UPSTREAM_TIMEOUT", 120.0),
            idle=_float(env, "EDGE_UPSTREAM_IDLE_TIMEOUT", 300.0),
        ),
        log_level=(env.get("EDGE_LOG_LEVEL") or "INFO").upper(),
        redis_timeout=_float(env, "EDGE_REDIS_TIMEOUT", 0.1),
        responses_retention=_float(env, "EDGE_RESPONSES_RETENTION_DAYS", 30.0) * 86400.0,
        background_lease=_float(env, "EDGE_BACKGROUND_LEASE_SECONDS", 30.0),
        background_concurrency=max(1, int(_float(env, "EDGE_BACKGROUND_CONCURRENCY", 8))),
        shutdown=Shutdown(
            grace=_seconds(env, "EDGE_SHUTDOWN_GRACE", 3.0),
            timeout=_seconds(env, "EDGE_SHUTDOWN_TIMEOUT", 30.0),
        ),
        guards=_guards(env),
        metrics_token=_metrics_token(env),
        metrics_port=parse_metrics_port(
            "EDGE_METRICS_PORT", env.get("EDGE_METRICS_PORT") or str(DEFAULT_METRICS_PORT)
        ),
        metrics_dir=env.get("PROMETHEUS_MULTIPROC_DIR") or None,
        store_startup_timeout=_seconds(env, "EDGE_STORE_STARTUP_TIMEOUT", 10.0),
        quota=_quota_settings(env, config),
        **_alert_webhook(env),
    )
