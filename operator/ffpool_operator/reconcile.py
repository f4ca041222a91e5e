"""Reconciliation I/O: declare the topology, apply the owned objects, write status. The
decisions are in the pure modules; this only reads, calls them and writes."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ffpool import logs, names
from ffpool_operator import builders, conditions, topology_sync, workloads
from ffpool_operator.broker import BrokerAdmin
from ffpool_operator.kube import Kube
from ffpool_operator.models import Condition, PoolRef, PoolSpec, PoolStatus
from ffpool_operator.topology_sync import TopologyReport

log = logs.get(__name__)


def parse_spec(spec: Any) -> PoolSpec:
    """Raises ValueError with a readable message (callers make it a PermanentError)."""
    try:
        return PoolSpec.model_validate(dict(spec))
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ValueError(f"invalid spec: {details}") from exc


def parse_status(status: Any) -> PoolStatus:
    try:
        return PoolStatus.model_validate(dict(status or {}))
    except ValidationError:
        return PoolStatus()  # unreadable status: rebuild it rather than fail the pool


async def sync_topology(admin: BrokerAdmin, pool: PoolRef, spec: PoolSpec) -> TopologyReport:
    report = await topology_sync.ensure(
        admin, spec.rabbitmq.vhost, topology_sync.plan(pool, spec.topology)
    )
    if report.created:
        log.info("topology declared", pool=pool.name, created=report.created)
    if report.conflicts:
        log.warning("topology conflicts", pool=pool.name, conflicts=report.conflicts)
    return report


def topology_condition(
    conds: list[Condition], report: TopologyReport, generation: int | None
) -> list[Condition]:
    if report.error is not None:
        return conditions.set_condition(
            conds, conditions.TOPOLOGY_READY, None, "BrokerUnavailable", report.error,
            generation=generation,
        )  # fmt: skip
    if report.ready:
        return conditions.set_condition(
            conds, conditions.TOPOLOGY_READY, True, "Declared", generation=generation
        )
    message = "; ".join(report.conflicts) + (
        ". RabbitMQ cannot change a queue's arguments: delete and recreate the queue, or revert"
        " the spec (TTL/max-length/overflow/dead-lettering also apply through the pool's policy)."
    )
    return conditions.set_condition(
        conds,
        conditions.TOPOLOGY_READY,
        False,
        "QueueArgumentsDiffer",
        message,
        generation=generation,
    )


async def apply_children(kube: Kube, pool: PoolRef, spec: PoolSpec) -> None:
    await kube.apply(builders.config_map(pool, spec))
    await kube.apply(builders.service(pool, spec))
    await kube.apply(workloads.server_deployment(pool, spec))
    worker = workloads.worker_deployment(pool, spec)
    await kube.apply(worker, on_create=workloads.worker_on_create(spec))
    ingress = builders.ingress(pool, spec)
    if ingress is not None:
        await kube.apply(ingress)
    elif await kube.get("Ingress", pool.namespace, builders.service_name(pool)) is not None:
        await kube.delete("Ingress", pool.namespace, builders.service_name(pool))


async def write_status(kube: Kube, pool: PoolRef, status: dict[str, Any]) -> None:
    await kube.patch(names.CRD_KIND, pool.namespace, pool.name, {"status": status}, sub="status")
