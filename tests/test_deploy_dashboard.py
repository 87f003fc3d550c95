"""deploy/grafana/edge-dashboard.json: valid JSON whose every query names series and labels
that edge exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client.metrics import MetricWrapperBase

from edge.deployment_metrics import DeploymentMetrics
from edge.metrics import Metrics

DASHBOARD = Path(__file__).resolve().parent.parent / "deploy" / "grafana" / "edge-dashboard.json"
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def exported() -> dict[str, set[str]]:
    """Series name -> label names, for every series edge's Metrics (and the deployments'
    series it registers beside them) defines."""
    out: dict[str, set[str]] = {}
    metrics = Metrics()
    for metric in [*vars(metrics).values(), *vars(DeploymentMetrics(metrics.registry)).values()]:
        if isinstance(metric, MetricWrapperBase):
            labels = set(metric._labelnames)
            for suffix in SUFFIXES[metric._type]:
                out[metric._name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return out


def test_dashboard_queries_use_exported_series_and_labels() -> None:
    dash = json.loads(DASHBOARD.read_text())
    series = exported()
    panels = dash["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    used: set[str] = set()
    for panel in panels:
        assert panel["title"] and set(panel["gridPos"]) == {"h", "w", "x", "y"}
        for target in panel["targets"]:
            expr = target["expr"]
            names = set(re.findall(r"\bedge_[a-z_]+", expr))
            assert names or expr.startswith("process_"), expr  # ProcessCollector
            for name in names:
                assert name in series, f"{name} is not exported"
                used.add(name)
                grouped = re.findall(r"by \(([^)]*)\)", expr)
                for group in grouped:
                    for label in (x.strip() for x in group.split(",")):
                        assert label in series[name], f"{name} has no label {label}"
    # Every family the issue lists has a panel.
    for family in (
        "edge_requests_total",
        "edge_request_duration_seconds_bucket",
        "edge_time_to_first_byte_seconds_bucket",
        "edge_tokens_total",
        "edge_quota_denials_total",
        "edge_upstream_errors_total",
        "edge_open_streams",
        "edge_store_fallbacks_total",
        "edge_refusals_total",
        "edge_fallback_attempts_total",
        "edge_cost_usd_total",
        "edge_budget_used_ratio",
    ):
        assert family in used, family
    variables = {v["name"] for v in dash["templating"]["list"]}
    assert {"datasource", "namespace"} <= variables
