"""Per-deployment series: requests, errors, cooldowns and latency. Labels are the catalog's
model ids and deployment names (a closed set) and a closed set of error kinds."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from edge.metrics import LATENCY_BUCKETS, OTHER

# What a deployment's failure was: the provider's rate limit, its 5xx, or the transport.
ERROR_KINDS = frozenset({"rate_limited", "server_error", "unreachable", "timeout", "interrupted"})
# More deployments than any catalog declares share `other`, so the scrape stays bounded.
MAX_SERIES = 1000


class DeploymentMetrics:
    """The series one process keeps about the deployments it called."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ("model", "deployment")
        self._seen: set[tuple[str, str]] = set()
        self.requests = Counter(
            "edge_deployment_requests",
            "Attempts sent to a model's deployment (retries included).",
            labels,
            registry=registry,
        )
        self.errors = Counter(
            "edge_deployment_errors",
            "Attempts a deployment failed, by kind.",
            (*labels, "kind"),
            registry=registry,
        )
        self.cooldowns = Counter(
            "edge_deployment_cooldowns",
            "Cooldowns this process put on a deployment.",
            labels,
            registry=registry,
        )
        self.latency = Histogram(
            "edge_deployment_attempt_seconds",
            "Time of one attempt on a deployment, to its answer (whole streams included).",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

    def _pair(self, model: str, deployment: str) -> tuple[str, str]:
        pair = (model, deployment)
        if pair in self._seen:
            return pair
        if len(self._seen) >= MAX_SERIES:
            return (OTHER, OTHER)
        self._seen.add(pair)
        return pair

    def attempt(self, model: str, deployment: str, seconds: float) -> None:
        """One attempt made, and how long it took."""
        pair = self._pair(model, deployment)
        self.requests.labels(*pair).inc()
        self.latency.labels(*pair).observe(seconds)

    def error(self, model: str, deployment: str, kind: str) -> None:
        """One attempt failed in the deployment's way."""
        shown = kind if kind in ERROR_KINDS else "server_error"
        self.errors.labels(*self._pair(model, deployment), shown).inc()

    def cooled(self, model: str, deployment: str) -> None:
        """One cooldown put on the deployment."""
        self.cooldowns.labels(*self._pair(model, deployment)).inc()
