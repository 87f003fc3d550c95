"""deploy/: the kustomize base and production overlay, rendered here (the small subset of
kustomize they use), validated offline against the Kubernetes schemas, and held to the
invariants a platform team relies on."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
KUBE = ROOT / "deploy" / "kubernetes"
BASE = KUBE / "base"
PRODUCTION = KUBE / "overlays" / "production"
K8S_VERSIONS = ("1.30", "1.33")
# Strategic-merge keys of the list fields these manifests patch; other lists are replaced.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "topologySpreadConstraints": "topologyKey",
}
Doc = dict[str, Any]


# --- a small kustomize: resources, namespace, labels, images, patches -------------------


def load_docs(path: Path) -> list[Doc]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def merge(base: Any, patch: Any, field: str = "") -> Any:
    """Strategic merge patch: maps merge, keyed lists merge by key, null deletes."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            elif key in out:
                out[key] = merge(out[key], value, key)
            else:
                out[key] = copy.deepcopy(value)
        return out
    key = MERGE_KEYS.get(field)
    if isinstance(base, list) and isinstance(patch, list) and key:
        out_list = [copy.deepcopy(item) for item in base]
        for item in patch:
            match = next((i for i, b in enumerate(out_list) if b.get(key) == item.get(key)), None)
            if match is None:
                out_list.insert(0, copy.deepcopy(item))  # kustomize puts new items first
            else:
                out_list[match] = merge(out_list[match], item)
        return out_list
    return copy.deepcopy(patch)


def _same(doc: Doc, patch: Doc) -> bool:
    return doc["kind"] == patch["kind"] and doc["metadata"]["name"] == patch["metadata"]["name"]


def _apply_patch(docs: list[Doc], patch: Doc) -> list[Doc]:
    targets = [d for d in docs if _same(d, patch)]
    assert len(targets) == 1, f"patch matches {len(targets)} resources: {patch['metadata']}"
    if patch.get("$patch") == "delete":
        return [d for d in docs if not _same(d, patch)]
    return [merge(d, patch) if _same(d, patch) else d for d in docs]


def _image(image: str, rules: list[Doc]) -> str:
    name, _, tag = image.partition(":")
    for rule in rules:
        if rule["name"] == name:
            return f"{rule.get('newName', name)}:{rule.get('newTag', tag)}"
    return image


def _set_images(node: Any, rules: list[Doc]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                for container in value:
                    container["image"] = _image(container["image"], rules)
            else:
                _set_images(value, rules)
    elif isinstance(node, list):
        for item in node:
            _set_images(item, rules)


KNOWN_FIELDS = {"apiVersion", "kind", "resources", "namespace", "labels", "images", "patches"}


def render(directory: Path) -> list[Doc]:
    """`kubectl kustomize directory`, for the features these kustomizations use."""
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(spec) - KNOWN_FIELDS
    assert not unknown, f"this renderer does not know {unknown}: extend it or the test"
    docs: list[Doc] = []
    for entry in spec.get("resources", []):
        target = directory / entry
        docs += render(target) if target.is_dir() else load_docs(target)
    for entry in spec.get("patches", []):
        for patch in load_docs(directory / entry["path"]):
            docs = _apply_patch(docs, patch)
    for label in spec.get("labels", []):
        for doc in docs:
            doc["metadata"].setdefault("labels", {}).update(label["pairs"])
    if "images" in spec:
        _set_images(docs, spec["images"])
    if "namespace" in spec:
        for doc in docs:
            if doc["kind"] != "Namespace":
                doc["metadata"]["namespace"] = spec["namespace"]
    return docs


# --- the rendered outputs ---------------------------------------------------------------

OUTPUTS = {"base": render(BASE), "production": render(PRODUCTION)}


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


overlays = pytest.mark.parametrize("overlay", list(OUTPUTS))


@overlays
@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_manifest_validates_against_the_schema(overlay: str, version: str) -> None:
    for doc in OUTPUTS[overlay]:
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # a CRD: checked by test_service_monitor_selects_the_service
        kubernetes_validate.validate(doc, version, strict=True)


@overlays
def test_deployment_invariants(overlay: str) -> None:
    docs = OUTPUTS[overlay]
    deployment = one(docs, "Deployment", "edge")
    pod = deployment["spec"]["template"]["spec"]
    container = gateway(docs)
    assert deployment["spec"]["replicas"] >= 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["args"][:3] == ["serve", "--host", "0.0.0.0"]
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
    for workload in workloads(OUTPUTS[overlay]):
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
    for workload in workloads(OUTPUTS[overlay]):
        for container in workload["spec"]["template"]["spec"]["containers"]:
            name, _, tag = container["image"].rpartition(":")
            assert name and tag and tag != "latest", container["image"]
            assert re.fullmatch(r"\d+\.\d+\.\d+(-[a-z0-9.]+)?", tag), container["image"]


SECRET_NAME = re.compile(r"(TOKEN|SECRET|PASSWORD|API_KEY)$")


@overlays
def test_secrets_are_never_inline(overlay: str) -> None:
    for workload in workloads(OUTPUTS[overlay]):
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
    for secret in (d for d in OUTPUTS[overlay] if d["kind"] == "Secret"):
        values = {**secret.get("stringData", {}), **secret.get("data", {})}
        assert values and set(values.values()) == {"REPLACE_ME"}, "a template holds no values"


def test_production_takes_its_secret_from_outside() -> None:
    assert not [d for d in OUTPUTS["production"] if d["kind"] == "Secret"]
    assert one(OUTPUTS["production"], "Namespace")["metadata"]["labels"][
        "pod-security.kubernetes.io/enforce"
    ] == "restricted"
    assert all(
        d["metadata"].get("namespace") == "edge"
        for d in OUTPUTS["production"]
        if d["kind"] != "Namespace"
    )
    assert gateway(OUTPUTS["production"])["image"].startswith("registry.example.com/")


@overlays
def test_disruption_budget_and_autoscaler(overlay: str) -> None:
    docs = OUTPUTS[overlay]
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
def test_network_policy(overlay: str) -> None:
    docs = OUTPUTS[overlay]
    policy = one(docs, "NetworkPolicy", "edge")["spec"]
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    sources = [p["namespaceSelector"]["matchLabels"] for p in policy["ingress"][0]["from"]]
    assert {"kubernetes.io/metadata.name": "ingress-nginx"} in sources
    egress_ports = {(p["port"], p["protocol"]) for rule in policy["egress"] for p in rule["ports"]}
    assert egress_ports == {(6379, "TCP"), (53, "UDP"), (53, "TCP"), (443, "TCP")}
    redis = one(docs, "NetworkPolicy", "edge-redis")["spec"]
    assert redis["egress"] == []


@overlays
def test_redis_persists_with_aof_on_a_claim(overlay: str) -> None:
    sts = one(OUTPUTS[overlay], "StatefulSet", "edge-redis")
    args = sts["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--dir") + 1] == "/data"
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"


def test_service_monitor_selects_the_service() -> None:
    docs = OUTPUTS["production"]
    monitor = one(docs, "ServiceMonitor", "edge")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(monitor["spec"]) == {"selector", "endpoints"}
    service = one(docs, "Service", "edge")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert re.fullmatch(r"\d+s", endpoint["interval"])


@overlays
def test_the_config_map_is_a_config_edge_accepts(overlay: str, tmp_path: Path) -> None:
    """The TOML in the ConfigMap loads, and every EDGE_ variable set is one edge reads."""
    from edge.settings import load_settings

    config = one(OUTPUTS[overlay], "ConfigMap", "edge-config")["data"]["edge.toml"]
    path = tmp_path / "edge.toml"
    path.write_text(config)
    env = {
        "EDGE_CONFIG": str(path),
        "EDGE_STORE_URL": "redis://:pw@edge-redis:6379/0",
        "EDGE_HMAC_SECRET": "x" * 40,
    }
    for name, entry in env_of(gateway(OUTPUTS[overlay])).items():
        if "value" in entry and name.startswith("EDGE_") and name not in env:
            env[name] = entry["value"]
    settings = load_settings(env)
    assert settings.shutdown.timeout >= 60
    assert settings.branch_host_pattern.match("br-main-api.example.com")
    known = Path(ROOT / "edge" / "settings.py").read_text()
    for name in env_of(gateway(OUTPUTS[overlay])):
        if name.startswith("EDGE_"):
            assert f'"{name}"' in known, f"{name} is not read by edge"


def test_placeholders_refuse_to_start() -> None:
    from edge.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match="EDGE_HMAC_SECRET still holds"):
        load_settings({"EDGE_HMAC_SECRET": "REPLACE_ME"})


def normalized(docs: list[Doc]) -> list[str]:
    """Documents as canonical JSON, list order aside (kustomize may order merged lists)."""

    def norm(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: norm(v) for k, v in node.items()}
        if isinstance(node, list):
            return sorted((norm(v) for v in node), key=lambda v: json.dumps(v, sort_keys=True))
        return node

    return sorted(json.dumps(norm(d), sort_keys=True) for d in docs)


def kustomize_command() -> list[str] | None:
    """A real kustomize, when one is installed: kubectl's, or the standalone binary (`make
    test` puts one beside the virtualenv's Python)."""
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    beside = Path(sys.executable).parent / "kustomize"
    found = shutil.which("kustomize") or (str(beside) if beside.exists() else None)
    return [found, "build"] if found else None


@pytest.mark.skipif(kustomize_command() is None, reason="neither kubectl nor kustomize is here")
@overlays
def test_renderer_agrees_with_real_kustomize(overlay: str) -> None:
    """Where kustomize exists, it renders exactly what this test checks."""
    directory = BASE if overlay == "base" else PRODUCTION
    command = kustomize_command()
    assert command is not None
    out = subprocess.run(
        [*command, str(directory)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert normalized([d for d in yaml.safe_load_all(out) if d]) == normalized(OUTPUTS[overlay])


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
    pod = OUTPUTS["base"]
    uid = one(pod, "Deployment", "edge")["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
    assert uid == int(user.group(1))


def test_dockerignore_sends_only_what_the_build_copies() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    allowed = {ln.removeprefix("!").rstrip("/") for ln in ignore if ln.startswith("!")}
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", DOCKERFILE, re.M)
    sources = {src for line in copied for src in line.split()}
    assert sources <= allowed
    for src in sources:
        assert (ROOT / src).exists(), src
    assert ignore[-5:] and "**" in ignore
