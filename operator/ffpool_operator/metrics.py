"""The operator's Prometheus metrics (served by main.py on its metrics port)."""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Gauge

DECISIONS = Counter(
    "ffpool_operator_scaling_decisions_total",
    "Worker scaling decisions that changed the replica count",
    ["namespace", "pool", "direction"],
)
QUEUE_READY = Gauge(
    "ffpool_operator_queue_ready", "Ready jobs seen in the pool's queue", ["namespace", "pool"]
)
QUEUE_UNACKED = Gauge(
    "ffpool_operator_queue_unacked",
    "In-flight jobs seen in the pool's queue",
    ["namespace", "pool"],
)
DESIRED_WORKERS = Gauge(
    "ffpool_operator_desired_workers", "Workers the autoscaler wants", ["namespace", "pool"]
)
RECONCILE_ERRORS = Counter(
    "ffpool_operator_reconcile_errors_total",
    "Reconcile or autoscaling failures (retried)",
    ["namespace", "pool", "stage"],
)
METRICS_FAILURES = Counter(
    "ffpool_operator_metrics_failures_total",
    "Polls where queue statistics were unavailable",
    ["namespace", "pool"],
)
# What the autoscaling poll sees of the worker Deployment and its pods (docs/monitoring.md): the
# dashboard's workers panel and the alerts "waiting with workers at max" and "crash loops".
MAX_WORKERS = Gauge(
    "ffpool_operator_max_workers",
    "Most workers the pool may run: maxReplicas, or workers.replicas with autoscaling off",
    ["namespace", "pool"],
)
CURRENT_WORKERS = Gauge(
    "ffpool_operator_current_workers",
    "Worker pods that exist, ready or not",
    ["namespace", "pool"],
)
BUSY_WORKERS = Gauge(
    "ffpool_operator_busy_workers", "Worker pods with a job in flight", ["namespace", "pool"]
)
WORKER_RESTARTS = Gauge(
    "ffpool_operator_worker_restarts",
    "Container restarts of the pool's worker pods (sum of restartCount; pods replaced start at 0)",
    ["namespace", "pool"],
)


def restart_count(pods: list[dict[str, Any]]) -> int:
    """The sum of every container's restartCount over `pods` (Pod objects as the API gives)."""
    return sum(
        int(c.get("restartCount") or 0)
        for pod in pods
        for c in ((pod.get("status") or {}).get("containerStatuses") or [])
    )


def observe_workers(namespace: str, pool: str, *, maximum: int, current: int, busy: int) -> None:
    MAX_WORKERS.labels(namespace, pool).set(maximum)
    CURRENT_WORKERS.labels(namespace, pool).set(current)
    BUSY_WORKERS.labels(namespace, pool).set(busy)
