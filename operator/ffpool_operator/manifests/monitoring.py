"""Pure builder: pool spec → the PodMonitor (Prometheus Operator, monitoring.coreos.com/v1) that
scrapes the pool's servers and workers on their ops port (docs/monitoring.md)."""

from __future__ import annotations

from ffpool import names
from ffpool_operator.manifests.objects import Manifest, metadata
from ffpool_operator.spec.pool import PoolRef, PoolSpec

API_VERSION = "monitoring.coreos.com/v1"
KIND = "PodMonitor"
METRICS_PATH = "/metrics"


def meta_label(label: str) -> str:
    """Prometheus' Kubernetes discovery label for a pod label: every character that is not a
    letter, digit or underscore becomes an underscore."""
    clean = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in label)
    return f"__meta_kubernetes_pod_label_{clean}"


def pod_monitor_name(pool: PoolRef) -> str:
    return pool.name


def pod_monitor(pool: PoolRef, spec: PoolSpec) -> Manifest:
    """Built whether `monitoring.podMonitor.enabled` or not (the flow decides). The `pool` and
    `component` target labels come from the pods' labels, so the dashboard and the alerts can
    tell pools and roles apart."""
    wanted = spec.monitoring.pod_monitor
    meta = metadata(pool, pod_monitor_name(pool), names.COMPONENT_SERVER)
    meta["labels"] = {**wanted.labels, **meta["labels"]}
    relabel = [
        {"sourceLabels": [meta_label(names.LABEL_POOL)], "targetLabel": "pool"},
        {"sourceLabels": [meta_label(names.LABEL_COMPONENT)], "targetLabel": "component"},
    ]
    endpoint = {
        "port": "ops",
        "path": METRICS_PATH,
        "interval": wanted.interval,
        "relabelings": relabel,
    }
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": meta,
        "spec": {
            "selector": {
                "matchLabels": {names.LABEL_POOL: pool.name},
                "matchExpressions": [
                    {
                        "key": names.LABEL_COMPONENT,
                        "operator": "In",
                        "values": [names.COMPONENT_SERVER, names.COMPONENT_WORKER],
                    }
                ],
            },
            "namespaceSelector": {"matchNames": [pool.namespace]},
            "podMetricsEndpoints": [endpoint],
        },
    }
