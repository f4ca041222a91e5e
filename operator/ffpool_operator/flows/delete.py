"""The delete flow: owned objects go by owner references; the broker's queues stay unless the
pool's deletion policy says DeleteIfEmpty, and then only those nothing uses."""

from __future__ import annotations

from typing import Any

import kopf

from ffpool import names
from ffpool_operator import metrics
from ffpool_operator.broker import queue_rename, topology
from ffpool_operator.decisions import drift
from ffpool_operator.decisions.broker_model import BrokerError, BrokerNotFound, BrokerRejected
from ffpool_operator.flows import reconcile_io
from ffpool_operator.flows.runtime import Runtime
from ffpool_operator.kube import events
from ffpool_operator.kube.client import KubeError
from ffpool_operator.spec.credentials import MissingSecret
from ffpool_operator.spec.pool import DeletionPolicy, PoolRef, PoolSpec

DELETE_BROKER_WAIT_SECONDS = 60.0


async def run_delete(
    runtime: Runtime, pool: PoolRef, spec: Any, body: Any, elapsed_seconds: float
) -> None:
    """An unreachable broker delays deletion at most a minute (`elapsed_seconds`: since the
    deletion began)."""
    try:
        parsed: PoolSpec | None = reconcile_io.parse_spec(spec)
    except ValueError:
        parsed = None
    try:
        if parsed and parsed.topology.deletion_policy is DeletionPolicy.DELETE_IF_EMPTY:
            await _delete_queues(runtime, pool, parsed, body)
    except (MissingSecret, BrokerError, KubeError) as exc:
        if elapsed_seconds < DELETE_BROKER_WAIT_SECONDS:
            raise kopf.TemporaryError(f"broker unavailable: {exc}", delay=10) from exc
        kopf.warn(body, reason="QueuesKept", message=f"broker unreachable, queues kept: {exc}")
    finally:
        runtime.forget(pool)
        events.LIMITER.forget(pool.uid)
        queue_rename.WATCH.forget(topology.policy_name(pool))
        drift.MEMORY.forget(pool.uid)
        metrics.forget_pool(pool.namespace, pool.name)  # no ghost pools on dashboards


async def _delete_queues(runtime: Runtime, pool: PoolRef, spec: PoolSpec, body: Any) -> None:
    """RabbitMQ's `if-empty` counts only ready messages: a queue with jobs in flight would go,
    and those jobs with it. So each queue is read first (exact ready/consumer counts over AMQP
    where possible, unacked from the management API) and kept unless all are zero;
    `if-empty` still guards a publish racing the read. A quorum queue refuses `if-empty` (HTTP
    400), so it is unbound first (no new job reaches it), read again, and deleted without it."""
    clients = await runtime.broker_clients(pool, spec)
    plan = topology.plan(pool, spec.topology)
    vhost = spec.rabbitmq.vhost
    kept = []
    for queue in plan.queues:
        info = await clients.stats.queue(vhost, queue)
        if info is not None and info.type == names.QUEUE_TYPE_QUORUM:
            for binding in (b for b in plan.bindings if b.queue == queue):
                await clients.admin.unbind(vhost, binding)
            info = await clients.stats.queue(vhost, queue)
        if info is None:
            continue
        if (why := topology.in_use(info)) is not None:
            kept.append(f"{queue} ({why})")
            continue
        try:
            await clients.admin.delete_queue(
                vhost, queue, if_empty=info.type != names.QUEUE_TYPE_QUORUM
            )
        except BrokerNotFound:
            continue  # gone meanwhile
        except BrokerRejected:
            kept.append(f"{queue} (not empty)")
    if kept:
        kopf.warn(body, reason="QueuesKept", message=f"queues still in use, kept: {kept}")
    else:
        await clients.admin.delete_policy(vhost, plan.policy.name)
