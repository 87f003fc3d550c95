"""Prometheus metrics, one registry per app. Label sets stay bounded: routes are patterns, models
come from the catalog, accounts are tenants; never key ids or raw paths."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.process_collector import ProcessCollector

from edge.context import RequestContext
from edge.errors import GatewayError
from policies.quota_estimate import cost_micros

# Requests span milliseconds (errors, cached answers) to minutes (long generations).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
TTFB_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
NONE = "none"
OTHER = "other"
QUOTA_DENIED = "REQUEST_LIMIT_EXCEEDED"
# Per-account series are kept for this many accounts per process; later ones share `other`,
# so a gateway with many tenants cannot grow the scrape without bound.
MAX_ACCOUNT_LABELS = 500
MAX_REASON_LABELS = 100
_TOKEN = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
# What an upstream failure can be; anything else is counted as "other" to keep the set closed.
UPSTREAM_KINDS = frozenset(
    {
        "error",
        "timeout",
        "unreachable",
        "interrupted",
        "auth_failed",
        "too_large",
        "malformed",
        "rate_limited",
    }
)


_Children = tuple[Counter, Histogram, Histogram]


@runtime_checkable
class FallbackSource(Protocol):
    """Anything that counts its fallbacks from the shared store (e.g. to a local decision)."""

    def fallback_counts(self) -> Mapping[str, int]:
        """Fallbacks so far, by kind; counts only grow."""


def note_error(ctx: RequestContext, err: GatewayError) -> None:
    """Remember the error a request ended with (before or during its stream) for the metrics."""
    ctx.error = err


class BoundedLabel:
    """A label's values, at most `limit` distinct ones; later ones (and any that is not a
    plain token) are `other`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        """The value to label with."""
        if value in self._seen:
            return value
        if len(self._seen) >= self.limit or not _TOKEN.fullmatch(value):
            return OTHER
        self._seen.add(value)
        return value


def quota_limit(err: GatewayError) -> str:
    """The limit a quota denial names: its RateLimit-Policy token, or `blocked`."""
    policy = err.headers.get("RateLimit-Policy", "")
    name = policy.split(";", 1)[0].strip().strip('"')
    return name if _TOKEN.fullmatch(name) else "blocked"


def upstream_kind(err: GatewayError, provider: str | None) -> str | None:
    """The kind of an upstream failure, or None when the error is not the provider's."""
    code = err.code or ""
    if code.startswith("upstream_"):
        kind = code.removeprefix("upstream_")
        return kind if kind in UPSTREAM_KINDS else "other"
    if err.status == 429 and code != QUOTA_DENIED and provider is not None:
        return "rate_limited"
    return None


class Metrics:
    """The gateway's series, and cheap recording for the request path."""

    def __init__(self, multiprocess_dir: str | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.multiprocess_dir = multiprocess_dir
        r = self.registry
        labels = ("route", "model", "provider", "status")
        self.requests = Counter("edge_requests", "Requests answered.", labels, registry=r)
        self.latency = Histogram(
            "edge_request_duration_seconds",
            "Time from request to the end of the response (whole streams included).",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttfb = Histogram(
            "edge_time_to_first_byte_seconds",
            "Time from request to the first byte of the response body.",
            ("route", "model", "provider"),
            buckets=TTFB_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "edge_tokens", "Tokens used.", ("account", "model", "direction"), registry=r
        )
        self.quota_denials = Counter(
            "edge_quota_denials", "Requests refused by our own quotas.", ("limit",), registry=r
        )
        self.refusals = Counter(
            "edge_refusals",
            "Requests the gateway answered with an error, by its code (quota, access, input, "
            "upstream).",
            ("reason",),
            registry=r,
        )
        self.fallback_attempts = Counter(
            "edge_fallback_attempts",
            "Attempts of calls whose fallback chain went past its first model, by model and "
            "the status each answered.",
            ("model", "outcome"),
            registry=r,
        )
        self.cost = Counter(
            "edge_cost_usd",
            "Cost of the calls answered, from the catalog's prices.",
            ("account",),
            registry=r,
        )
        self.upstream_errors = Counter(
            "edge_upstream_errors", "Upstream provider failures.", ("provider", "kind"), registry=r
        )
        self.open_streams = Gauge(
            "edge_open_streams",
            "Streams being served now.",
            ("route",),
            multiprocess_mode="livesum",
            registry=r,
        )
        self.store_fallbacks = Counter(
            "edge_store_fallbacks",
            "Decisions taken without the shared store, by kind.",
            ("kind",),
            registry=r,
        )
        self.budget_ratio = Gauge(
            "edge_budget_used_ratio",
            "Each budget's use in its current window, as a fraction of its limit (read back "
            "after each call settles).",
            ("account", "scope", "budget"),
            multiprocess_mode="mostrecent",
            registry=r,
        )
        self.draining = Gauge(
            "edge_draining", "1 while shutting down.", multiprocess_mode="livemax", registry=r
        )
        if multiprocess_dir is None:
            # Custom collectors do not work in multiprocess mode.
            ProcessCollector(registry=r)
        self._request_children: dict[tuple[str, str, str, int], _Children] = {}
        self._token_children: dict[tuple[str, str], tuple[Counter, Counter]] = {}
        self._cost_children: dict[str, Counter] = {}
        self._accounts = BoundedLabel(MAX_ACCOUNT_LABELS)
        self._reasons = BoundedLabel(MAX_REASON_LABELS)
        self._sources: list[FallbackSource] = []
        self._fallbacks_seen: dict[str, int] = {}

    def _children(self, route: str, model: str, provider: str, status: int) -> _Children:
        # Resolving label children takes a lock and a lookup; the hot path reuses them.
        key = (route, model, provider, status)
        found = self._request_children.get(key)
        if found is None:
            code = str(status)
            found = (
                self.requests.labels(route, model, provider, code),
                self.latency.labels(route, model, provider, code),
                self.ttfb.labels(route, model, provider),
            )
            self._request_children[key] = found
        return found

    def _cost(self, account: str) -> Counter:
        found = self._cost_children.get(account)
        if found is None:
            found = self._cost_children[account] = self.cost.labels(account)
        return found

    def _tokens(self, account: str, model: str) -> tuple[Counter, Counter]:
        key = (account, model)
        found = self._token_children.get(key)
        if found is None:
            found = (
                self.tokens.labels(account, model, "input"),
                self.tokens.labels(account, model, "output"),
            )
            self._token_children[key] = found
        return found

    def observe(self, ctx: RequestContext, route: str, seconds: float) -> None:
        """Record a finished request: count, latency, time to first byte, tokens, errors."""
        model, provider = ctx.model or NONE, ctx.provider or NONE
        count, latency, ttfb = self._children(route, model, provider, ctx.status or 0)
        count.inc()
        latency.observe(seconds)
        if ctx.first_byte_at is not None:
            ttfb.observe(ctx.first_byte_at - ctx.started)
        usage = ctx.usage
        if usage is not None and ctx.account is not None:
            account = self._accounts(ctx.account)
            tokens_in, tokens_out = self._tokens(account, model)
            tokens_in.inc(usage.input_tokens)
            tokens_out.inc(usage.output_tokens)
            served = next((r.model for r in ctx.routes if r.model.id == ctx.model), None)
            micros = cost_micros(
                served, usage.input_tokens, usage.output_tokens, usage.cached_tokens
            )
            if micros:
                self._cost(account).inc(micros / 1_000_000)
        if len(ctx.attempts) > 1:
            for tried, status in ctx.attempts:
                self.fallback_attempts.labels(tried, str(status or NONE)).inc()
        if ctx.error is not None:
            self._error(ctx.error, ctx.provider)

    def _error(self, err: GatewayError, provider: str | None) -> None:
        self.refusals.labels(self._reasons(err.code or str(err.status))).inc()
        if err.status == 429 and err.code == QUOTA_DENIED:
            self.quota_denials.labels(quota_limit(err)).inc()
            return
        kind = upstream_kind(err, provider)
        if kind is not None:
            self.upstream_errors.labels(provider or NONE, kind).inc()

    def budget_used(self, account: str, scope: str, budget: str, ratio: float) -> None:
        """A budget's use now (the account label bounded like every other)."""
        self.budget_ratio.labels(self._accounts(account), scope, budget).set(ratio)

    def stream_delta(self, route: str, delta: int) -> None:
        """A stream opened (+1) or closed (-1)."""
        self.open_streams.labels(route).inc(delta)

    def watch_fallbacks(self, source: FallbackSource) -> None:
        """Count a source's store fallbacks at each scrape."""
        self._sources.append(source)

    def _sync_fallbacks(self) -> None:
        # Sources keep plain counts; the counter takes the growth since the last scrape, so it
        # also works in multiprocess mode, where custom collectors do not.
        totals: dict[str, int] = {}
        for source in self._sources:
            for kind, count in source.fallback_counts().items():
                totals[kind] = totals.get(kind, 0) + count
        for kind, total in totals.items():
            if not _TOKEN.fullmatch(kind):
                continue
            child = self.store_fallbacks.labels(kind)  # at zero too: the series always exists
            grown = total - self._fallbacks_seen.get(kind, 0)
            if grown > 0:
                child.inc(grown)
                self._fallbacks_seen[kind] = total

    def render(self) -> bytes:
        """The exposition text: this process's series, or every worker's in multiprocess mode."""
        self._sync_fallbacks()
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(merged)
