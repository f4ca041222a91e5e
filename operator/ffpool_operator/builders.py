"""Pure builders: pool spec → owned ConfigMap, Service and Ingress manifests (plain dicts, the
shape the API takes). Workloads are in workloads.py."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ffpool import names
from ffpool.settings import BackendKind
from ffpool_operator.models import PoolRef, PoolSpec

Manifest = dict[str, Any]
WS_PORT = 8080
HTTP_PORT = 8081
# Changing the ConfigMap alone would not restart pods; this pod-template annotation does.
ANNOTATION_CONFIG_HASH = f"{names.API_GROUP}/config-hash"


def child_name(pool: PoolRef, component: str) -> str:
    return f"{pool.name}-{component}"


def config_map_name(pool: PoolRef) -> str:
    return child_name(pool, "config")


def service_name(pool: PoolRef) -> str:
    return pool.name


def selector(pool: PoolRef, component: str) -> dict[str, str]:
    return {names.LABEL_POOL: pool.name, names.LABEL_COMPONENT: component}


def selector_text(pool: PoolRef, component: str) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(selector(pool, component).items()))


def labels(pool: PoolRef, component: str) -> dict[str, str]:
    return {
        names.LABEL_NAME: "ffpool",
        names.LABEL_INSTANCE: pool.name,
        names.LABEL_MANAGED_BY: names.MANAGER,
        **selector(pool, component),
    }


def owner_reference(pool: PoolRef) -> dict[str, Any]:
    return {
        "apiVersion": f"{names.API_GROUP}/{names.API_VERSION}",
        "kind": names.CRD_KIND,
        "name": pool.name,
        "uid": pool.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def metadata(pool: PoolRef, name: str, component: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": pool.namespace,
        "labels": labels(pool, component),
        "ownerReferences": [owner_reference(pool)],
        **extra,
    }


def service_env(spec: PoolSpec) -> dict[str, str]:
    """Non-secret settings shared by servers and workers (ffpool Settings field names, upper
    case); the topology part comes from the same model the service declares with."""
    return {
        **spec.env,
        **spec.topology.topology().env(),
        "BACKEND": BackendKind.RABBITMQ.value,
        "MAX_CONCURRENT_JOBS": str(spec.workers.jobs_per_worker),
        "MEDIA_ROOT": spec.storage.mount_path,
        "DRAIN_SECONDS": str(spec.workers.drain_seconds),
        "WS_PORT": str(WS_PORT),
        "HTTP_PORT": str(HTTP_PORT),
    }


def config_hash(data: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def config_map(pool: PoolRef, spec: PoolSpec) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(pool, config_map_name(pool), names.COMPONENT_SERVER),
        "data": service_env(spec),
    }


def service(pool: PoolRef, spec: PoolSpec) -> Manifest:
    svc = spec.servers.service
    ports = [
        {"name": "ws", "port": svc.port, "targetPort": "ws", "protocol": "TCP"},
        {"name": "http", "port": svc.http_port, "targetPort": "http", "protocol": "TCP"},
    ]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(
            pool, service_name(pool), names.COMPONENT_SERVER, annotations=dict(svc.annotations)
        ),
        "spec": {
            "type": svc.type.value,
            "selector": selector(pool, names.COMPONENT_SERVER),
            "ports": ports,
        },
    }


def _backend(pool: PoolRef, port: str) -> dict[str, Any]:
    return {"service": {"name": service_name(pool), "port": {"name": port}}}


def ingress(pool: PoolRef, spec: PoolSpec) -> Manifest | None:
    """WebSocket clients (path /ws) and downloads (HTTP port) through one host; None when off."""
    ing = spec.servers.ingress
    if not ing.enabled:
        return None
    paths = [
        {"path": names.WS_PATH, "pathType": "Prefix", "backend": _backend(pool, "ws")},
        {"path": "/", "pathType": "Prefix", "backend": _backend(pool, "http")},
    ]
    rule: dict[str, Any] = {"http": {"paths": paths}}
    if ing.host:
        rule["host"] = ing.host
    body: dict[str, Any] = {"rules": [rule]}
    if ing.class_name:
        body["ingressClassName"] = ing.class_name
    if ing.tls:
        tls: dict[str, Any] = {"secretName": ing.tls.secret_name}
        if ing.host:
            tls["hosts"] = [ing.host]
        body["tls"] = [tls]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata(
            pool, service_name(pool), names.COMPONENT_SERVER, annotations=dict(ing.annotations)
        ),
        "spec": body,
    }
