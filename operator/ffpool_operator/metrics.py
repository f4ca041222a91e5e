"""The operator's Prometheus metrics (served by main.py on its metrics port)."""

from __future__ import annotations

from typing import Any, Final

from prometheus_client import Counter, Gauge

# Every series here is per pool: `forget_pool` drops them all when the pool goes.
PER_POOL: list[Counter | Gauge] = []
POOL_LABELS: Final = ("namespace", "pool")


def _counter(name: str, doc: str, *extra: str) -> Counter:
    metric = Counter(name, doc, [*POOL_LABELS, *extra])
    PER_POOL.append(metric)
    return metric


def _gauge(name: str, doc: str) -> Gauge:
    metric = Gauge(name, doc, POOL_LABELS)
    PER_POOL.append(metric)
    return metric


DECISIONS = _counter(
    "ffpool_operator_scaling_decisions_total",
    "Worker scaling decisions that changed the replica count",
    "direction",
)
QUEUE_READY = _gauge("ffpool_operator_queue_ready", "Ready jobs seen in the pool's queue")
QUEUE_UNACKED = _gauge("ffpool_operator_queue_unacked", "In-flight jobs seen in the pool's queue")
DESIRED_WORKERS = _gauge("ffpool_operator_desired_workers", "Workers the autoscaler wants")
RECONCILE_ERRORS = _counter(
    "ffpool_operator_reconcile_errors_total",
    "Reconcile or autoscaling failures (retried)",
    "stage",
)
METRICS_FAILURES = _counter(
    "ffpool_operator_metrics_failures_total", "Polls where queue statistics were unavailable"
)
# What the autoscaling poll sees of the worker Deployment and its pods (docs/monitoring.md): the
# dashboard's workers panel and the alerts "waiting with workers at max" and "crash loops".
MAX_WORKERS = _gauge(
    "ffpool_operator_max_workers",
    "Most workers the pool may run: maxReplicas, or workers.replicas with autoscaling off",
)
CURRENT_WORKERS = _gauge("ffpool_operator_current_workers", "Worker pods that exist, ready or not")
BUSY_WORKERS = _gauge("ffpool_operator_busy_workers", "Worker pods with a job in flight")
# status.autoscaling as series (docs/monitoring.md): a paused pool or one on its fallback count
# does not follow its queue, which an alert should say.
AUTOSCALING_PAUSED = _gauge(
    "ffpool_operator_autoscaling_paused",
    "1 while a pause annotation holds the pool's worker count, else 0",
)
FALLBACK_ACTIVE = _gauge(
    "ffpool_operator_fallback_active",
    "1 while fallbackReplicas is in force (queue metrics missing too long), else 0",
)
# Not a gauge of the pods' summed restartCount: that drops when a pod goes (a scale-down, a
# rollout), which `increase()` reads as a counter reset and counts as restarts. This counter only
# ever adds the restarts the operator saw happen (RestartTracker, docs/monitoring.md).
WORKER_RESTARTS = _counter(
    "ffpool_operator_worker_restarts",
    "Worker container restarts the operator saw happen (restartCount growth per pod)",
)


def restart_count(pods: list[dict[str, Any]]) -> int:
    """The sum of every container's restartCount over `pods` (Pod objects as the API gives)."""
    return sum(
        int(c.get("restartCount") or 0)
        for pod in pods
        for c in ((pod.get("status") or {}).get("containerStatuses") or [])
    )


def pod_restarts(pods: list[dict[str, Any]]) -> dict[str, int]:
    """restart_count per pod uid (pods without a uid are left out: they cannot be followed)."""
    return {
        uid: restart_count([pod])
        for pod in pods
        if (uid := str((pod.get("metadata") or {}).get("uid") or ""))
    }


class RestartTracker:
    """The restartCount last seen per pod uid, per pool, to count restarts as they happen.

    A pod the operator already knew adds what its count grew by. A pod first seen on a later
    poll of its pool (created since the operator began watching it) adds its whole count: its
    restarts happened while we watched. On a pool's first poll after the operator starts, all
    counts are a baseline and add nothing: those restarts may be days old. Pods gone are
    forgotten at each poll, so the memory is the pool's current pods."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], dict[str, int]] = {}

    def update(self, namespace: str, pool: str, counts: dict[str, int]) -> int:
        """The restarts since the last poll of (namespace, pool); remembers `counts`."""
        before = self._seen.get((namespace, pool))
        self._seen[(namespace, pool)] = dict(counts)
        if before is None:
            return 0
        return sum(max(n - before.get(uid, 0), 0) for uid, n in counts.items())

    def forget(self, namespace: str, pool: str) -> None:
        self._seen.pop((namespace, pool), None)


RESTARTS = RestartTracker()


def observe_restarts(namespace: str, pool: str, pods: list[dict[str, Any]]) -> None:
    """The restarts one poll's worker pods show since the last poll."""
    counter = WORKER_RESTARTS.labels(namespace, pool)  # exported at 0 from the first poll
    counter.inc(RESTARTS.update(namespace, pool, pod_restarts(pods)))


def forget_pool(namespace: str, pool: str) -> None:
    """Drops every series of a deleted pool (else dashboards show it forever at its last
    values), whatever its other labels (`direction`, `stage`)."""
    for metric in PER_POOL:
        metric.remove_by_labels({"namespace": namespace, "pool": pool})
    RESTARTS.forget(namespace, pool)


def observe_workers(namespace: str, pool: str, *, maximum: int, current: int, busy: int) -> None:
    MAX_WORKERS.labels(namespace, pool).set(maximum)
    CURRENT_WORKERS.labels(namespace, pool).set(current)
    BUSY_WORKERS.labels(namespace, pool).set(busy)


def observe_autoscaling(namespace: str, pool: str, *, paused: bool, fallback: bool) -> None:
    AUTOSCALING_PAUSED.labels(namespace, pool).set(int(paused))
    FALLBACK_ACTIVE.labels(namespace, pool).set(int(fallback))
