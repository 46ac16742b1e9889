"""deploy/kubernetes: the base and each overlay render with `kubectl kustomize` (no cluster
needed), every built-in object passes kubernetes-validate's strict schemas for the API of
Kubernetes 1.32, and the ServiceMonitor (a Prometheus Operator CRD that kubernetes-validate
has no schema for) passes a minimal schema of the fields the Operator reads, written here.
Then what the objects must agree on: probes on the admin port, a grace period that covers the
gateway's drain, websocket timeouts on the ingress, one tenant label from the pods to the
scraped series, and a config file and Secret that `zhongtai check-config` accepts."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from obs_support import DEPLOY, ROOT, run_clean

from gateway.config import ServerConfig

KUSTOMIZE = DEPLOY / "kubernetes"
TARGETS = {
    "base": KUSTOMIZE / "base",
    "sentinel": KUSTOMIZE / "overlays" / "sentinel",
    "cluster": KUSTOMIZE / "overlays" / "cluster",
}
KUBERNETES_VERSION = "1.32.0"
NO_KUBECTL = "kubectl not found: install kubectl (1.32 or newer renders kustomizations offline)"
NO_VALIDATE = "kubernetes-validate not installed: pip install kubernetes-validate (test extra)"
KINDS = {
    "ConfigMap",
    "Secret",
    "Service",
    "Deployment",
    "Ingress",
    "PodDisruptionBudget",
    "HorizontalPodAutoscaler",
    "ServiceMonitor",
}
# Slack for closing the sockets and Redis after the in-flight work of shutdown_timeout_s.
CLOSE_S = 5


_rendered: dict[str, list[dict[str, Any]]] = {}


def render(name: str) -> list[dict[str, Any]]:
    if name not in _rendered:
        kubectl = shutil.which("kubectl")
        if kubectl is None:
            pytest.skip(NO_KUBECTL)
        done = subprocess.run(
            [kubectl, "kustomize", str(TARGETS[name])], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        _rendered[name] = [d for d in yaml.safe_load_all(done.stdout) if d]
    return _rendered[name]


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind]
    return found


def config_of(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return tomllib.loads(one(objects, "ConfigMap")["data"]["zhongtai.toml"])


def secret_env(objects: list[dict[str, Any]]) -> dict[str, str]:
    data = one(objects, "Secret")["data"]
    return {key: base64.b64decode(value).decode() for key, value in data.items()}


def container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (gateway,) = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    return gateway


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_renders_every_object(name):
    objects = render(name)
    assert sorted(o["kind"] for o in objects) == sorted(KINDS)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_kubernetes_validate_accepts_every_builtin_object(name):
    validate = pytest.importorskip("kubernetes_validate", reason=NO_VALIDATE)
    checked = set()
    for obj in render(name):
        if obj["kind"] == "ServiceMonitor":
            continue  # a CRD: test_the_service_monitor_has_the_fields_the_operator_reads
        try:
            validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except validate.ValidationError as exc:
            pytest.fail(f"{name}: {obj['kind']}/{obj['metadata']['name']}: {exc.message}")
        checked.add(obj["kind"])
    assert checked == KINDS - {"ServiceMonitor"}


_RELABEL = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "sourceLabels": {"type": "array", "items": {"type": "string"}},
        "targetLabel": {"type": "string"},
        "replacement": {"type": "string"},
        "regex": {"type": "string"},
        "separator": {"type": "string"},
        "action": {"enum": ["replace", "keep", "drop", "labelmap", "labeldrop", "labelkeep"]},
    },
}
# What monitoring.coreos.com/v1 ServiceMonitor's CRD says of the fields used here, and no
# other field (additionalProperties: a misspelt key would be silently ignored by a cluster).
SERVICE_MONITOR = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["selector", "endpoints"],
            "properties": {
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["matchLabels"],
                    "properties": {
                        "matchLabels": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        }
                    },
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["port"],
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string"},
                            "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                            "relabelings": {"type": "array", "items": _RELABEL},
                            "authorization": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["credentials"],
                                "properties": {
                                    "type": {"const": "Bearer"},
                                    "credentials": {
                                        "type": "object",
                                        "additionalProperties": False,
                                        "required": ["name", "key"],
                                        "properties": {
                                            "name": {"type": "string"},
                                            "key": {"type": "string"},
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_the_service_monitor_has_the_fields_the_operator_reads(name):
    jsonschema = pytest.importorskip("jsonschema", reason=NO_VALIDATE)
    objects = render(name)
    monitor = one(objects, "ServiceMonitor")
    jsonschema.validate(monitor, SERVICE_MONITOR)
    # It selects the Service, on a port the Service has: the admin port.
    service = one(objects, "Service")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "admin" and endpoint["path"] == "/metrics"
    assert "admin" in {p["name"] for p in service["spec"]["ports"]}


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_probes_are_on_the_admin_port(name):
    objects = render(name)
    server = config_of(objects)["server"]
    gateway = container(objects)
    ports = {p["name"]: p["containerPort"] for p in gateway["ports"]}
    assert ports == {"http": server.get("port", 8080), "admin": server.get("admin_port", 9180)}
    assert gateway["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}
    # Liveness must not depend on Redis: /healthz checks nothing but the process.
    assert gateway["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}
    assert gateway["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}
    # /readyz pings Redis for up to socket_timeout_s before it answers 503.
    socket_timeout = config_of(objects).get("redis", {}).get("socket_timeout_s", 5.0)
    assert gateway["readinessProbe"]["timeoutSeconds"] > socket_timeout


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_the_grace_period_covers_the_drain(name):
    objects = render(name)
    shutdown_s = config_of(objects)["server"].get(
        "shutdown_timeout_s", ServerConfig().shutdown_timeout_s
    )
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    command = container(objects)["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep" and len(command) == 2
    pre_stop_s = float(command[1])
    grace = pod["terminationGracePeriodSeconds"]
    # Long enough that SIGKILL never cuts the drain short, not so long that a stuck pod
    # holds a rollout.
    assert pre_stop_s + shutdown_s + CLOSE_S <= grace <= pre_stop_s + shutdown_s + 3 * CLOSE_S
    strategy = one(objects, "Deployment")["spec"]["strategy"]["rollingUpdate"]
    assert strategy["maxUnavailable"] == 0


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_the_ingress_keeps_websockets_open_and_the_admin_port_private(name):
    objects = render(name)
    config = config_of(objects)
    ingress = one(objects, "Ingress")
    annotations = ingress["metadata"]["annotations"]
    heartbeats = [
        config["server"].get("heartbeat_s", 20.0),
        config.get("webchat", {}).get("heartbeat_s", 20.0),
    ]
    for key in ("proxy-read-timeout", "proxy-send-timeout"):
        assert int(annotations[f"nginx.ingress.kubernetes.io/{key}"]) > 2 * max(heartbeats)
    assert ingress["spec"]["ingressClassName"] == "nginx"
    backends = [
        path["backend"]["service"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    ]
    service = one(objects, "Service")["metadata"]["name"]
    assert backends == [{"name": service, "port": {"name": "http"}}]


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_one_tenant_label_from_the_pods_to_the_scraped_series(name):
    objects = render(name)
    tenant = config_of(objects)["server"].get("tenant", "default")
    deployment = one(objects, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pod_labels["tenant"] == tenant, "the pods' tenant label is not [server] tenant"
    assert deployment["spec"]["selector"]["matchLabels"]["tenant"] == tenant
    for kind in ("Service", "PodDisruptionBudget"):
        obj = one(objects, kind)
        selector = obj["spec"]["selector"]
        selector = selector.get("matchLabels", selector)
        assert selector.items() <= pod_labels.items(), kind
        assert selector["tenant"] == tenant, kind
    relabel = one(objects, "ServiceMonitor")["spec"]["endpoints"][0]["relabelings"]
    assert {"targetLabel": "job", "replacement": "zhongtai"} in relabel
    assert {"sourceLabels": ["__meta_kubernetes_pod_label_tenant"], "targetLabel": "tenant"} in (
        relabel
    )
    hpa = one(objects, "HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["minReplicas"] >= 2  # one process down must not be all of them
    assert "replicas" not in deployment["spec"], "the autoscaler owns the replica count"


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_the_pod_uses_the_generated_config_and_secret(name):
    objects = render(name)
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    gateway = container(objects)
    (source,) = gateway["envFrom"]
    assert source["secretRef"]["name"] == one(objects, "Secret")["metadata"]["name"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["config"]["configMap"]["name"] == one(objects, "ConfigMap")["metadata"]["name"]
    mounts = {m["name"]: m["mountPath"] for m in gateway["volumeMounts"]}
    assert gateway["args"] == ["--config", f"{mounts['config']}/zhongtai.toml"]
    # runAsNonRoot can only be verified against a numeric user: the image's USER is one.
    dockerfile = (DEPLOY / "Dockerfile").read_text("utf-8")
    (user,) = re.findall(r"^USER\s+(\S+)", dockerfile, re.M)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert str(pod["securityContext"]["runAsUser"]) == user


def _check_config(text: str, objects: list[dict[str, Any]], tmp_path: Path) -> None:
    """`zhongtai check-config` on ``text`` with the Secret's variables: an unknown or
    misspelt key (every [redis] key of the overlays included) fails, naming it."""
    path = tmp_path / "zhongtai.toml"
    path.write_text(text, "utf-8")
    done = run_clean(
        [sys.executable, "-m", "gateway", "check-config", str(path)], ROOT, secret_env(objects)
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "valid" in done.stdout


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_check_config_accepts_the_config_with_the_secret(name, tmp_path: Path):
    objects = render(name)
    _check_config(one(objects, "ConfigMap")["data"]["zhongtai.toml"], objects, tmp_path)


def test_the_sentinel_overlay_takes_min_replica_acks_once_uncommented(tmp_path: Path):
    objects = render("sentinel")
    text = one(objects, "ConfigMap")["data"]["zhongtai.toml"]
    uncommented = text.replace("# min_replica_acks = 1\n", "min_replica_acks = 1\n")
    assert uncommented != text, "the overlay no longer shows min_replica_acks"
    assert tomllib.loads(uncommented)["redis"]["min_replica_acks"] == 1
    _check_config(uncommented, objects, tmp_path)


@pytest.mark.parametrize(
    ("name", "keys"),
    [("sentinel", {"sentinels", "sentinel_master"}), ("cluster", {"cluster_nodes"})],
)
def test_the_overlays_change_the_redis_table_only(name, keys):
    base, overlay = render("base"), render(name)
    base_config, config = config_of(base), config_of(overlay)
    assert {k: v for k, v in config.items() if k != "redis"} == {
        k: v for k, v in base_config.items() if k != "redis"
    }
    redis = config["redis"]
    assert keys <= redis.keys() and "url" not in redis
    nodes = redis.get("sentinels") or redis["cluster_nodes"]
    assert len(nodes) >= 3 and all(re.fullmatch(r"[a-z0-9.-]+:\d+", n) for n in nodes)
    # A URL in the environment would win over the table's servers.
    secrets = secret_env(overlay)
    assert "ZHONGTAI_REDIS_URL" in secret_env(base) and "ZHONGTAI_REDIS_URL" not in secrets
    assert secrets.keys() == secret_env(base).keys() - {"ZHONGTAI_REDIS_URL"}
    # Everything else is the base's, object for object (but for the generated Secret's name,
    # which the ServiceMonitor's token names).
    strip = {"ConfigMap", "Secret", "Deployment"}
    assert [_unsuffixed(o) for o in overlay if o["kind"] not in strip] == [
        _unsuffixed(o) for o in base if o["kind"] not in strip
    ]


def _unsuffixed(obj: dict[str, Any]) -> Any:
    return yaml.safe_load(re.sub(r"zhongtai-secrets-[a-z0-9]+", "zhongtai-secrets", yaml.dump(obj)))
