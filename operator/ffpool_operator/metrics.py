"""The operator's Prometheus metrics (served by main.py on its metrics port)."""

from __future__ import annotations

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
