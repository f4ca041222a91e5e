"""Pure builders of the server and worker Deployments: restricted Pod Security, probes, the
signing key and (servers) tokens Secrets as read-only volumes, env from the ConfigMap plus Secret
references; the storage, tenants and webhook parts come from storage.py."""

from __future__ import annotations

from typing import Any

from ffpool import names
from ffpool_operator.manifests import storage
from ffpool_operator.manifests.objects import (
    ANNOTATION_CONFIG_HASH,
    HTTP_PORT,
    OPS_PORT,
    SIGNING_DIR,
    WS_PORT,
    Manifest,
    child_name,
    config_hash,
    config_map_name,
    labels,
    metadata,
    selector,
    service_env,
    signing_secret_name,
)
from ffpool_operator.spec.pool import PoolRef, PoolSpec, Resources, Scheduling

RUN_AS = 10001  # numeric, so the kubelet can verify runAsNonRoot without reading the image
TMP_VOLUME = "tmp"
SIGNING_VOLUME = "signing"
TOKENS_VOLUME = "tokens"
TOKENS_DIR = "/var/run/ffpool/tokens"
# Scrapers that discover pods by annotation (Prometheus' `kubernetes-pods` convention) find the
# ops port here; docs/kubernetes.md ("Secure by default") shows the scrape configuration.
SCRAPE_ANNOTATIONS = {
    "prometheus.io/scrape": "true",
    "prometheus.io/port": str(OPS_PORT),
    "prometheus.io/path": names.METRICS_PATH,
}

POD_SECURITY: dict[str, Any] = {
    "runAsNonRoot": True,
    "runAsUser": RUN_AS,
    "runAsGroup": RUN_AS,
    "fsGroup": RUN_AS,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "runAsUser": RUN_AS,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def _env(spec: PoolSpec, component: str) -> list[dict[str, Any]]:
    rmq = spec.rabbitmq
    out = [
        {
            "name": "RABBITMQ_URL",
            "valueFrom": {"secretKeyRef": {"name": rmq.secret_name, "key": rmq.amqp_url_key}},
        },
        # Names the broker connection after the pod: the autoscaler maps connections to pods.
        {"name": "INSTANCE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ]
    if _has_tokens(spec, component):
        out.append({"name": "AUTH_TOKENS_FILE", "value": f"{TOKENS_DIR}/{spec.auth.tokens_key}"})
    return out + storage.env(spec)


def _has_tokens(spec: PoolSpec, component: str) -> bool:
    """Only servers authenticate clients: workers never see the tokens."""
    return component == names.COMPONENT_SERVER and spec.auth.tokens_secret is not None


def _mounts(spec: PoolSpec, component: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"name": TMP_VOLUME, "mountPath": "/tmp"},  # noqa: S108 - an emptyDir, per pod
        *storage.storage_mounts(spec),
        {"name": SIGNING_VOLUME, "mountPath": SIGNING_DIR, "readOnly": True},
    ]
    if _has_tokens(spec, component):
        # A whole-directory mount, never `subPath`: the kubelet updates Secret volumes in place
        # (atomically, via a symlink swap), which a subPath mount would not see, and the service
        # reloads the tokens file when it changes, without a restart.
        out.append({"name": TOKENS_VOLUME, "mountPath": TOKENS_DIR, "readOnly": True})
    return out + storage.secret_mounts(spec)


def _volumes(pool: PoolRef, spec: PoolSpec, component: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"name": TMP_VOLUME, "emptyDir": {"sizeLimit": "1Gi"}},
        *storage.storage_volumes(spec),
        storage.secret_volume(SIGNING_VOLUME, signing_secret_name(pool)),
    ]
    tokens = spec.auth.tokens_secret
    if tokens is not None and _has_tokens(spec, component):
        out.append(storage.secret_volume(TOKENS_VOLUME, tokens))
    return out + storage.secret_volumes(spec)


def _resources(res: Resources) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if res.requests:
        out["requests"] = dict(res.requests)
    if res.limits:
        out["limits"] = dict(res.limits)
    return out


def container(pool: PoolRef, spec: PoolSpec, component: str, res: Resources) -> dict[str, Any]:
    ports = [
        {"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"},
        {"name": "ops", "containerPort": OPS_PORT, "protocol": "TCP"},
    ]
    if component == names.COMPONENT_SERVER:
        ports.insert(0, {"name": "ws", "containerPort": WS_PORT, "protocol": "TCP"})
    return {
        "name": component,
        "image": spec.image,
        "imagePullPolicy": spec.image_pull_policy.value,
        "command": ["ffpool"],
        "args": [component],
        "ports": ports,
        "envFrom": [{"configMapRef": {"name": config_map_name(pool)}}],
        "env": _env(spec, component),
        "resources": _resources(res),
        "livenessProbe": _probe(names.LIVE_PATH, 10, 3),
        "readinessProbe": _probe(names.READY_PATH, 5, 2),
        "securityContext": dict(CONTAINER_SECURITY),
        "volumeMounts": _mounts(spec, component),
    }


def _scheduling(s: Scheduling) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if s.node_selector:
        out["nodeSelector"] = dict(s.node_selector)
    if s.tolerations:
        out["tolerations"] = list(s.tolerations)
    if s.affinity:
        out["affinity"] = dict(s.affinity)
    if s.topology_spread_constraints:
        out["topologySpreadConstraints"] = list(s.topology_spread_constraints)
    if s.priority_class_name:
        out["priorityClassName"] = s.priority_class_name
    return out


def pod_spec(pool: PoolRef, spec: PoolSpec, component: str) -> dict[str, Any]:
    side = spec.workers if component == names.COMPONENT_WORKER else spec.servers
    body: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "securityContext": dict(POD_SECURITY),
        "containers": [container(pool, spec, component, side.resources)],
        "volumes": _volumes(pool, spec, component),
        "terminationGracePeriodSeconds": spec.workers.grace_seconds,
        **_scheduling(side.scheduling),
    }
    if spec.image_pull_secrets:
        body["imagePullSecrets"] = [{"name": n} for n in spec.image_pull_secrets]
    if spec.service_account_name:
        body["serviceAccountName"] = spec.service_account_name
    return body


def deployment(pool: PoolRef, spec: PoolSpec, component: str, replicas: int | None) -> Manifest:
    """`replicas=None` leaves the count out: after creation the worker count belongs to the
    autoscaling daemon's field manager, and an apply without it leaves it alone."""
    template_meta = {
        "labels": labels(pool, component),
        "annotations": {
            **SCRAPE_ANNOTATIONS,
            ANNOTATION_CONFIG_HASH: config_hash(service_env(spec)),
        },
    }
    body: dict[str, Any] = {
        "selector": {"matchLabels": selector(pool, component)},
        # Workers never surge-and-kill mid-job on rollout: old pods drain on SIGTERM.
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0},
        },
        "template": {"metadata": template_meta, "spec": pod_spec(pool, spec, component)},
    }
    if replicas is not None:
        body = {"replicas": replicas, **body}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(pool, child_name(pool, component), component),
        "spec": body,
    }


def initial_worker_replicas(spec: PoolSpec) -> int:
    """The worker count at creation only. Afterwards the autoscaling daemon alone sets it: with
    autoscaling on from queue depth (at least min), with it off from `workers.replicas` (the
    scale subresource), marking idle pods for removal first either way."""
    return spec.autoscaling.min_replicas if spec.autoscaling.enabled else spec.workers.replicas


def server_deployment(pool: PoolRef, spec: PoolSpec) -> Manifest:
    return deployment(pool, spec, names.COMPONENT_SERVER, spec.servers.replicas)


def worker_deployment(pool: PoolRef, spec: PoolSpec, replicas: int | None = None) -> Manifest:
    """The reconcile's apply leaves `replicas` out (None) except when it creates the Deployment;
    a full manifest (rendering, validation) passes a count."""
    return deployment(pool, spec, names.COMPONENT_WORKER, replicas)


def worker_replicas(pool: PoolRef, replicas: int) -> Manifest:
    """The autoscaling daemon's apply: the worker count and nothing else, so that its field
    manager owns `spec.replicas` alone."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": child_name(pool, names.COMPONENT_WORKER),
            "namespace": pool.namespace,
        },
        "spec": {"replicas": replicas},
    }
