"""Empties the priority bands a spec change retired, one bounded pass per drift check: their
jobs moved into the bands that now hold their priorities (broker/job_mover.py), each queue
deleted once it is empty and unused, and an Event saying what moved (docs/operator.md,
"Priority band changes"). Runs only after the topology is declared with nothing in the way: a
job the mover cannot route goes back to the old queue, and a quorum queue counts that return
toward the job's delivery limit."""

from __future__ import annotations

import time

from ffpool import logs, names
from ffpool_operator.broker import job_mover, queue_rename, topology
from ffpool_operator.decisions.broker_model import BrokerError
from ffpool_operator.flows.runtime import BrokerClients, Runtime
from ffpool_operator.kube import events
from ffpool_operator.spec.credentials import MissingSecret
from ffpool_operator.spec.pool import PoolRef, PoolSpec

log = logs.get(__name__)


def declared(report: topology.TopologyReport) -> bool:
    return not (
        report.problem or report.conflicts or report.type_changes or report.exchange_conflict
    )


async def run(runtime: Runtime, pool: PoolRef, spec: PoolSpec) -> None:
    """Never raises for broker trouble: the jobs stay where they are until the next pass."""
    key = topology.policy_name(pool)
    current = [(spec.rabbitmq.vhost, q) for q in spec.topology.topology().job_queues()]
    retired = [r for r in queue_rename.WATCH.watching(key, *current) if r.band]
    if not retired:
        return
    try:
        clients = await runtime.broker_clients(pool, spec)
        for r in retired:
            await _empty(clients, pool, key, r, spec.rabbitmq.timeout_seconds)
    except (BrokerError, MissingSecret) as exc:
        log.warning("moving retired band jobs failed", pool=pool.name, error=str(exc))


async def _empty(
    clients: BrokerClients, pool: PoolRef, key: str, r: queue_rename.Retired, timeout: float
) -> None:
    info = await clients.admin.queue(r.vhost, r.queue)
    if info is None:
        queue_rename.WATCH.drop(key, r)
        return
    moved = 0
    ready, consumers = info.messages_ready, info.consumers
    if clients.amqp_url is not None:
        result = await job_mover.move(
            clients.amqp_url, timeout, r.queue, r.target_exchange, r.route
        )
        moved, ready, consumers = result.moved, result.ready, result.consumers
    if moved:
        message = f"moved {moved} jobs from retired priority band {r.queue} into the current bands"
        post(pool, "JobsMoved", message)
    if ready or consumers or info.messages_unacknowledged or clients.amqp_url is None:
        return  # kept: reported by the topology check (queue_rename.stranded)
    quorum = info.type == names.QUEUE_TYPE_QUORUM
    await clients.admin.delete_queue(r.vhost, r.queue, if_empty=not quorum)
    queue_rename.WATCH.drop(key, r)
    post(pool, "RetiredBandDeleted", f"retired priority band {r.queue} was empty: deleted")


def post(pool: PoolRef, reason: str, message: str) -> None:
    event = events.PoolEvent(type=events.EventType.NORMAL, reason=reason, message=message)
    events.post(pool, [event], time.monotonic(), repeat=0.0)
