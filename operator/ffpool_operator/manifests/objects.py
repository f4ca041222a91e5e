"""Pure builders: pool spec → owned ConfigMap, Service, Ingress and signing-key Secret manifests
(plain dicts, the shape the API takes). Workloads are in deployments.py, NetworkPolicies in
network_policies.py."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ffpool import names
from ffpool_operator.manifests import storage
from ffpool_operator.spec.pool import PoolRef, PoolSpec

Manifest = dict[str, Any]
WS_PORT = 8080
HTTP_PORT = 8081
OPS_PORT = 8082
SIGNING_KEY = "signing-key"
SIGNING_DIR = "/var/run/ffpool/signing"
# Changing the ConfigMap alone would not restart pods; this pod-template annotation does.
ANNOTATION_CONFIG_HASH = f"{names.API_GROUP}/config-hash"


def child_name(pool: PoolRef, component: str) -> str:
    return f"{pool.name}-{component}"


def config_map_name(pool: PoolRef) -> str:
    return child_name(pool, "config")


def signing_secret_name(pool: PoolRef) -> str:
    return child_name(pool, "signing")


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
    auth = spec.auth
    return {
        **spec.env,
        **spec.topology.topology().env(),
        "ALLOW_ANONYMOUS": str(auth.allow_anonymous).lower(),
        **({"ALLOWED_ORIGINS": ",".join(auth.allowed_origins)} if auth.allowed_origins else {}),
        "SIGNING_KEY_FILE": f"{SIGNING_DIR}/{SIGNING_KEY}",
        "BACKEND": names.BACKEND_RABBITMQ,
        **_addresses(spec),
        "MAX_CONCURRENT_JOBS": str(spec.workers.jobs_per_worker),
        **storage.settings(spec),
        "DRAIN_SECONDS": str(spec.workers.drain_seconds),
        "WS_PORT": str(WS_PORT),
        "HTTP_PORT": str(HTTP_PORT),
        "OPS_PORT": str(OPS_PORT),
    }


def _addresses(spec: PoolSpec) -> dict[str, str]:
    """The broker's other nodes, for servers and workers alike (docs/operator.md)."""
    addresses = spec.rabbitmq.addresses
    return {"RABBITMQ_ADDRESSES": ",".join(addresses)} if addresses else {}


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
        # For in-cluster scrapers only: the Ingress never routes to it (`ingress`).
        {"name": "ops", "port": svc.ops_port, "targetPort": "ops", "protocol": "TCP"},
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


def client_paths() -> list[tuple[str, str, str]]:
    """(path, pathType, Service port) of what clients use, and nothing else: /metrics and
    /dead-letters (ops port) and the probes stay inside the cluster (docs/kubernetes.md)."""
    jobs = names.JOB_PATH.split("/{", 1)[0]
    return [
        (names.WS_PATH, "Prefix", "ws"),
        (names.UPLOADS_PATH, "Prefix", "http"),
        (jobs, "Prefix", "http"),
        (names.SCHEMA_PATH, "Exact", "http"),
        (names.AUTH_TICKET_PATH, "Exact", "http"),
        (names.HEALTH_PATH, "Exact", "http"),
        # The web page: its HTML, its assets and the little it reads before signing in.
        (names.PAGE_PATH, "Exact", "http"),
        (names.STATIC_PREFIX.rstrip("/"), "Prefix", "http"),
        (names.UI_CONFIG_PATH, "Exact", "http"),
    ]


def ingress(pool: PoolRef, spec: PoolSpec) -> Manifest | None:
    """The client paths (`client_paths`) through one host; None when off."""
    ing = spec.servers.ingress
    if not ing.enabled:
        return None
    paths = [
        {"path": path, "pathType": kind, "backend": _backend(pool, port)}
        for path, kind, port in client_paths()
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


def signing_secret(pool: PoolRef, key: str) -> Manifest:
    """The pool's download-link and job-id signing key, shared by all its pods. Created once
    (reconcile.ensure_signing_secret), never applied: an apply would replace the key."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(pool, signing_secret_name(pool), names.COMPONENT_SERVER),
        "type": "Opaque",
        "stringData": {SIGNING_KEY: key},
    }
