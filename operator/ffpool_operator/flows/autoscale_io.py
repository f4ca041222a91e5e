"""The I/O of one autoscaling poll (autoscale.py) for one pool: read queue stats, worker pods
and their broker connections, call the pure decision, mark idle pods, set replicas."""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ConfigDict

from ffpool import logs, names
from ffpool_operator import metrics
from ffpool_operator.decisions import pausing, victims
from ffpool_operator.decisions.broker_model import BrokerError, QueueStatsSource
from ffpool_operator.decisions.scaling import (
    Decision,
    History,
    QueueStats,
    decide,
    failures_after,
    total,
)
from ffpool_operator.kube.client import Kube
from ffpool_operator.manifests import deployments, objects
from ffpool_operator.spec.pool import PoolRef, PoolSpec

log = logs.get(__name__)


async def read_stats(source: QueueStatsSource | None, spec: PoolSpec) -> QueueStats | None:
    """Summed over the priority bands' queues (one when classic); None when none exists."""
    if source is None:
        return None
    try:
        infos = [
            await source.queue(spec.rabbitmq.vhost, queue)
            for queue in spec.topology.topology().job_queues()
        ]
    except BrokerError as exc:
        log.warning("queue statistics unavailable", error=str(exc))
        return None
    return total([info.stats() for info in infos if info is not None])


class DeploymentSeen(BaseModel):
    """The worker Deployment's counts, parsed at the boundary: `requested` is `spec.replicas`
    (what the decision starts from), `current` is `status.replicas` (pods that exist, ready or
    not: what `status.workers.current`, the `Workers` column and the scale subresource show),
    `ready` is `status.readyReplicas`."""

    model_config = ConfigDict(frozen=True)

    requested: int = 0
    current: int = 0
    ready: int = 0

    @classmethod
    def parse(cls, deployment: dict[str, Any]) -> DeploymentSeen:
        spec = deployment.get("spec") or {}
        status = deployment.get("status") or {}
        return cls(
            requested=int(spec.get("replicas") or 0),
            current=int(status.get("replicas") or 0),
            ready=int(status.get("readyReplicas") or 0),
        )


class Activity(BaseModel):
    """What the management API tells about the worker pods' broker use."""

    model_config = ConfigDict(frozen=True)

    in_flight: dict[str, int]
    connections: dict[str, frozenset[str]]


async def read_activity(source: QueueStatsSource | None, vhost: str) -> Activity | None:
    """Unacked jobs and connections per worker pod; None when unknown (nothing counts as idle)."""
    if source is None:
        return None
    try:
        conns = await source.connections(vhost)
        chans = await source.channels(vhost)
    except BrokerError as exc:
        log.warning("worker connections unavailable", error=str(exc))
        return None
    return Activity(
        in_flight=victims.in_flight_by_pod(conns, chans),
        connections=victims.connections_by_pod(conns),
    )


def _pod(obj: dict[str, Any]) -> victims.WorkerPod:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    cost = annotations.get(names.ANNOTATION_DELETION_COST)
    return victims.WorkerPod(
        name=obj["metadata"]["name"],
        deletion_cost=int(cost) if cost and cost.lstrip("-").isdigit() else None,
    )


async def worker_pods(kube: Kube, pool: PoolRef) -> list[victims.WorkerPod]:
    wanted = objects.selector(pool, names.COMPONENT_WORKER)
    items = await kube.list(
        "Pod", pool.namespace, objects.selector_text(pool, names.COMPONENT_WORKER)
    )
    # Filter again locally: a selector the server ignored must not make us touch other pods.
    mine = [
        p
        for p in items
        if wanted.items() <= ((p.get("metadata") or {}).get("labels") or {}).items()
        and not (p.get("metadata") or {}).get("deletionTimestamp")
    ]
    metrics.observe_restarts(pool.namespace, pool.name, mine)
    return [_pod(p) for p in mine]


async def mark_victims(
    kube: Kube, pool: PoolRef, pods: list[victims.WorkerPod], remove: int
) -> None:
    costs = victims.deletion_costs(pods, remove)
    for name, cost in victims.cost_patches(pods, costs).items():
        body = {"metadata": {"annotations": {names.ANNOTATION_DELETION_COST: str(cost)}}}
        # A merge patch, not an apply: a pod gone meanwhile is a 404 here, where an apply would
        # try to create it.
        await kube.patch("Pod", pool.namespace, name, body, manager=names.FIELD_MANAGER_AUTOSCALER)


async def write_replicas(kube: Kube, pool: PoolRef, count: int) -> None:
    """The worker count, applied under the daemon's own field manager: its `managedFields`
    entry shows who owns `spec.replicas`, and the reconcile's applies (which leave the count
    out) can never reset it (docs/operator.md, "Worker count")."""
    await kube.apply(
        deployments.worker_replicas(pool, count), manager=names.FIELD_MANAGER_AUTOSCALER
    )


def pinned_decision(
    spec: PoolSpec, current: int, history: History, stats: QueueStats | None
) -> Decision:
    """Autoscaling off: the user's number (`kubectl scale`) wins, even below the busy pods;
    `apply` still marks idle pods to go first. Metrics are reported as they are: the count does
    not need them, but `MetricsAvailable` must not claim what was not read."""
    desired = spec.workers.replicas
    unread = "" if stats is not None else " (metrics unavailable)"
    return Decision(
        desired=desired,
        current=current,
        reason=f"autoscaling off → {desired} workers{unread}",
        history=history,
        metrics_available=stats is not None,
    )


class PollResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    decision: Decision
    stats: QueueStats | None
    pods: list[victims.WorkerPod]
    idle: dict[str, victims.IdleMark]
    """Per-pod idle history for the next poll (kept in the pool's runtime state)."""
    failed_polls: int = 0
    """Consecutive polls without metrics, this one included (kept like `idle`)."""


async def poll(
    kube: Kube,
    source: QueueStatsSource | None,
    pool: PoolRef,
    spec: PoolSpec,
    current: int,
    history: History,
    idle: dict[str, victims.IdleMark],
    failed_polls: int = 0,
    pause: pausing.Pause | None = None,
) -> PollResult:
    """`failed_polls`: the count before this poll; a pause wins over the queue and the
    fallback (decisions/pausing.py)."""
    stats = await read_stats(source, spec)
    activity = await read_activity(source, spec.rabbitmq.vhost)
    now = time.monotonic()
    pods = victims.with_in_flight(
        await worker_pods(kube, pool), activity.in_flight if activity else {}
    )
    pods, idle = victims.settle(
        pods,
        activity.connections if activity else None,
        idle,
        now,
        spec.rabbitmq.statistics_interval_seconds,
    )
    busy = current if activity is None else victims.busy_count(pods)
    # No broker clients yet (before the first reconcile read the Secret): not started, not
    # failed; a restart in an outage keeps the count the status held (flows/autoscale.py).
    failed = failed_polls if source is None else failures_after(stats, failed_polls)
    if not spec.autoscaling.enabled:
        decision = pinned_decision(spec, current, history, stats)
    else:
        decision = decide(
            stats, current, busy, spec.autoscaling, spec.target_per_worker, history, now, failed
        )
    if pause is not None and pause.paused:
        decision = pausing.paused_decision(pause, decision, busy)
    return PollResult(decision=decision, stats=stats, pods=pods, idle=idle, failed_polls=failed)


async def apply(
    kube: Kube, pool: PoolRef, decision: Decision, pods: list[victims.WorkerPod]
) -> None:
    """Marks the idle pods to go before lowering the count (autoscaled or manual alike)."""
    if decision.desired < decision.current:
        await mark_victims(kube, pool, pods, decision.current - decision.desired)
    if decision.changed:
        await write_replicas(kube, pool, decision.desired)
        direction = "up" if decision.desired > decision.current else "down"
        metrics.DECISIONS.labels(pool.namespace, pool.name, direction).inc()
        log.info("workers scaled", pool=pool.name, reason=decision.reason)
    metrics.DESIRED_WORKERS.labels(pool.namespace, pool.name).set(decision.desired)
