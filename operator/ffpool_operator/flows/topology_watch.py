"""The topology drift check, in its own daemon (handlers.topology_drift) beside the autoscaling
one: declaring the topology takes several management API calls, each up to
`rabbitmq.timeoutSeconds`, and a slow broker must never delay a scaling decision
(docs/operator.md, "Topology drift")."""

from __future__ import annotations

import time
from typing import Any

import kopf

from ffpool import logs
from ffpool_operator import metrics
from ffpool_operator.broker import queue_rename, topology
from ffpool_operator.decisions.broker_model import Binding, BrokerError, BrokerUnavailable
from ffpool_operator.flows import band_moves, reconcile_io, reporting
from ffpool_operator.flows.reconcile import declare_topology
from ffpool_operator.flows.runtime import BrokerClients, Runtime
from ffpool_operator.kube import events
from ffpool_operator.kube.client import KubeError
from ffpool_operator.spec.credentials import MissingSecret
from ffpool_operator.spec.pool import PoolRef, PoolSpec

log = logs.get(__name__)
INVALID_SPEC_WAIT_SECONDS = 30.0  # as the autoscaling daemon: the reconcile reports it
KUBE_RETRY_SECONDS = 5.0


def schedule(next_check: float, now: float, interval: float) -> tuple[bool, float]:
    """(check now?, when the check after is due). 0.0 means never scheduled: the reconcile has
    just declared the topology (it sets the next check itself), so the first check waits."""
    if next_check == 0.0:
        return False, now + interval
    if now < next_check:
        return False, next_check
    return True, now + interval


async def drift_once(runtime: Runtime, pool: PoolRef, spec: Any, status: Any) -> float:
    """One pass; returns the seconds to wait. Never raises for API trouble: the daemon goes on."""
    try:
        parsed = reconcile_io.parse_spec(spec)
    except ValueError:
        return INVALID_SPEC_WAIT_SECONDS
    state = runtime.state(pool)
    due, state.next_drift_check = schedule(
        state.next_drift_check, time.monotonic(), parsed.topology.drift_check_seconds
    )
    if due:
        try:
            await _check(runtime, pool, parsed, status)
        except KubeError as exc:
            metrics.RECONCILE_ERRORS.labels(pool.namespace, pool.name, "drift").inc()
            log.warning("drift check failed", pool=pool.name, error=str(exc))
            return KUBE_RETRY_SECONDS
    return max(0.0, state.next_drift_check - time.monotonic())


async def _check(runtime: Runtime, pool: PoolRef, spec: PoolSpec, status: Any) -> None:
    report = await declare_topology(runtime, pool, spec)
    if band_moves.declared(report):  # the bands the jobs move to exist and are bound
        await band_moves.run(runtime, pool, spec)
    if report.problem is not None:
        log.warning("drift check failed", pool=pool.name, error=report.problem.message)
    known = reporting.known_conditions(runtime, pool, status)
    written = reconcile_io.topology_condition(known, report, None)
    written = topology.overrides_condition(written, report, None)
    written = topology.health_condition(written, report, spec.topology.quorum, None)
    await reporting.report(runtime, pool, written, topology.status_of(report))


async def on_spec_change(runtime: Runtime, pool: PoolRef, old: Any, new: Any) -> None:
    """A renamed job queue or a retired priority band: the old one is watched, and unbound
    where new jobs would reach it; a band's old key is forwarded to its successor first
    (queue_rename)."""
    try:
        retired = queue_rename.retired_all(
            reconcile_io.parse_spec(old), reconcile_io.parse_spec(new), time.monotonic()
        )
    except ValueError:
        return  # the reconcile reports an invalid spec; a valid old one has nothing to retire
    for gone in retired:
        await _retire(runtime, pool, new, gone)


async def _retire(runtime: Runtime, pool: PoolRef, new: Any, gone: queue_rename.Retired) -> None:
    queue_rename.WATCH.add(topology.policy_name(pool), gone)
    if gone.takes_new_jobs:
        await _unbind(runtime, pool, new, gone)
    log.info("job queue retired", pool=pool.name, old=gone.queue, new=gone.successor)
    events.post(pool, [_event(gone)], time.monotonic())


def _event(gone: queue_rename.Retired) -> events.PoolEvent:
    if gone.band:
        forwarded = (
            f"its key {gone.routing_key} now routes to {gone.successor}, " if gone.forward else ""
        )
        message = (
            f"priority band {gone.queue} retired: {forwarded}the queue is unbound, and its jobs"
            " move into the bands that hold their priorities (docs/operator.md)"
        )
        return events.PoolEvent(
            type=events.EventType.NORMAL, reason="PriorityBandRetired", message=message
        )
    unbound = f"unbound from {gone.exchange}" if gone.takes_new_jobs else "left bound to its key"
    message = (
        f"job queue {gone.queue} → {gone.successor}: {gone.queue} {unbound}, with the jobs it"
        " holds (docs/rabbitmq.md)"
    )
    return events.PoolEvent(type=events.EventType.NORMAL, reason="JobQueueRenamed", message=message)


async def _unbind(runtime: Runtime, pool: PoolRef, new: Any, gone: queue_rename.Retired) -> None:
    """Retried while the broker cannot be asked: left bound, it takes a copy of every job. A
    band's old key is bound to its successor first, so no job published with it is dropped."""
    binding = Binding(exchange=gone.exchange, queue=gone.queue, routing_key=gone.routing_key)
    try:
        clients = await runtime.broker_clients(pool, reconcile_io.parse_spec(new))
        runtime.state(pool).broker = clients  # read for the new spec: the poll uses it next
        if gone.forward is not None:
            await _forward(clients, gone.vhost, gone.forward)
        await clients.admin.unbind(gone.vhost, binding)
    except (MissingSecret, BrokerError, KubeError) as exc:
        raise kopf.TemporaryError(f"unbinding the old job queue: {exc}", delay=10) from exc


async def _forward(clients: BrokerClients, vhost: str, binding: Binding) -> None:
    """The successor may not be declared yet (the reconcile runs beside this handler)."""
    if await clients.admin.queue(vhost, binding.queue) is None:
        raise BrokerUnavailable(f"queue {binding.queue} not declared yet")
    await clients.admin.bind(vhost, binding)
