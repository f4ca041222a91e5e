"""One autoscaling poll for one pool (I/O): read queue stats, worker pods and their broker
connections, call the pure decision, mark idle pods, set replicas, report."""

from __future__ import annotations

import time
from typing import Any

from ffpool import logs, names
from ffpool_operator import builders, metrics, victims
from ffpool_operator.broker import BrokerError, QueueStatsSource
from ffpool_operator.kube import Kube
from ffpool_operator.models import PoolRef, PoolSpec
from ffpool_operator.scaling import Decision, History, QueueStats, decide

log = logs.get(__name__)


async def read_stats(source: QueueStatsSource | None, spec: PoolSpec) -> QueueStats | None:
    if source is None:
        return None
    try:
        info = await source.queue(spec.rabbitmq.vhost, spec.topology.job_queue)
    except BrokerError as exc:
        log.warning("queue statistics unavailable", error=str(exc))
        return None
    return None if info is None else info.stats()


async def read_in_flight(source: QueueStatsSource | None, vhost: str) -> dict[str, int] | None:
    """Unacked jobs per worker pod; None when unknown (then nothing counts as idle)."""
    if source is None:
        return None
    try:
        conns = await source.connections(vhost)
        chans = await source.channels(vhost)
    except BrokerError as exc:
        log.warning("worker connections unavailable", error=str(exc))
        return None
    return victims.in_flight_by_pod(conns, chans)


def _pod(obj: dict[str, Any]) -> victims.WorkerPod:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    cost = annotations.get(names.ANNOTATION_DELETION_COST)
    return victims.WorkerPod(
        name=obj["metadata"]["name"],
        deletion_cost=int(cost) if cost and cost.lstrip("-").isdigit() else None,
    )


async def worker_pods(kube: Kube, pool: PoolRef) -> list[victims.WorkerPod]:
    wanted = builders.selector(pool, names.COMPONENT_WORKER)
    items = await kube.list(
        "Pod", pool.namespace, builders.selector_text(pool, names.COMPONENT_WORKER)
    )
    # Filter again locally: a selector the server ignored must not make us touch other pods.
    mine = [
        p
        for p in items
        if wanted.items() <= ((p.get("metadata") or {}).get("labels") or {}).items()
        and not (p.get("metadata") or {}).get("deletionTimestamp")
    ]
    return [_pod(p) for p in mine]


async def mark_victims(
    kube: Kube, pool: PoolRef, pods: list[victims.WorkerPod], remove: int
) -> None:
    costs = victims.deletion_costs(pods, remove)
    for name, cost in victims.cost_patches(pods, costs).items():
        body = {"metadata": {"annotations": {names.ANNOTATION_DELETION_COST: str(cost)}}}
        await kube.patch("Pod", pool.namespace, name, body)


def fixed(spec: PoolSpec, current: int, busy: int, history: History) -> Decision:
    desired = max(spec.workers.replicas, min(busy, current))
    return Decision(
        desired=desired,
        current=current,
        reason=f"autoscaling off → {desired} workers",
        history=history,
        metrics_available=True,
    )


async def poll(
    kube: Kube,
    source: QueueStatsSource | None,
    pool: PoolRef,
    spec: PoolSpec,
    current: int,
    history: History,
) -> tuple[Decision, QueueStats | None, list[victims.WorkerPod]]:
    stats = await read_stats(source, spec)
    in_flight = await read_in_flight(source, spec.rabbitmq.vhost)
    pods = victims.with_in_flight(await worker_pods(kube, pool), in_flight or {})
    busy = current if in_flight is None else victims.busy_count(pods)
    if not spec.autoscaling.enabled:
        decision = fixed(spec, current, busy, history)
    else:
        decision = decide(
            stats,
            current,
            busy,
            spec.autoscaling,
            spec.target_per_worker,
            history,
            time.monotonic(),
        )
    return decision, stats, pods


async def apply(
    kube: Kube, pool: PoolRef, decision: Decision, pods: list[victims.WorkerPod]
) -> None:
    if decision.desired < decision.current:
        await mark_victims(kube, pool, pods, decision.current - decision.desired)
    if decision.changed:
        name = builders.child_name(pool, names.COMPONENT_WORKER)
        await kube.patch(
            "Deployment", pool.namespace, name, {"spec": {"replicas": decision.desired}}
        )
        direction = "up" if decision.desired > decision.current else "down"
        metrics.DECISIONS.labels(pool.namespace, pool.name, direction).inc()
        log.info("workers scaled", pool=pool.name, reason=decision.reason)
    metrics.DESIRED_WORKERS.labels(pool.namespace, pool.name).set(decision.desired)
