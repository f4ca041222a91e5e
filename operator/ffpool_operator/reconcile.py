"""Reconciliation I/O: declare the topology, apply the owned objects, write status. The
decisions are in the pure modules; this only reads, calls them and writes."""

from __future__ import annotations

import secrets
from typing import Any

from pydantic import ValidationError

from ffpool import logs, names
from ffpool_operator import autoscaler, builders, conditions, netpol, topology_sync, workloads
from ffpool_operator.auth_status import AuthProblem, tokens_problem
from ffpool_operator.broker import BrokerAdmin
from ffpool_operator.kube import Kube, KubeError, field_managers
from ffpool_operator.models import Condition, PoolRef, PoolSpec, PoolStatus
from ffpool_operator.topology_sync import TopologyReport

log = logs.get(__name__)
REPLICAS = ("spec", "replicas")
OWNERS = {names.FIELD_MANAGER, names.FIELD_MANAGER_AUTOSCALER}


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
    status, reason, message = _topology_state(report)
    return conditions.set_condition(
        conds, conditions.TOPOLOGY_READY, status, reason, message, generation=generation
    )


_EXCHANGE_HINT = (
    ". RabbitMQ cannot change an exchange's type or flags: delete it or revert the spec."
)
_QUEUE_HINT = (
    ". RabbitMQ cannot change a queue's arguments: delete and recreate the queue, or revert"
    " the spec (TTL/max-length/overflow/dead-lettering also apply through the pool's policy)."
)


def _topology_state(report: TopologyReport) -> tuple[bool | None, str, str]:
    if report.problem is not None:
        return report.problem.topology, report.problem.reason, report.problem.message
    if report.exchange_conflict is not None:
        return False, "ExchangeConflict", report.exchange_conflict + _EXCHANGE_HINT
    if report.conflicts:
        return False, "QueueArgumentsDiffer", "; ".join(report.conflicts) + _QUEUE_HINT
    return True, "Declared", ""


async def apply_children(
    kube: Kube, pool: PoolRef, spec: PoolSpec, broker_port: int | None = None
) -> None:
    """Server-side apply of every owned object (kube.py): what the spec no longer asks for goes,
    what other managers set stays. The signing key is the exception: created once, never
    applied. `broker_port` (from the AMQP URL) is the NetworkPolicy's egress port."""
    await ensure_signing_secret(kube, pool)
    await apply_network_policies(kube, pool, spec, broker_port)
    await kube.apply(builders.config_map(pool, spec))
    await kube.apply(builders.service(pool, spec))
    await kube.apply(workloads.server_deployment(pool, spec))
    await apply_workers(kube, pool, spec)
    ingress = builders.ingress(pool, spec)
    if ingress is not None:
        await kube.apply(ingress)
    elif await kube.get("Ingress", pool.namespace, builders.service_name(pool)) is not None:
        await kube.delete("Ingress", pool.namespace, builders.service_name(pool))


async def ensure_signing_secret(kube: Kube, pool: PoolRef) -> bool:
    """Creates the pool's signing key (32 random bytes, hex) unless its Secret exists; True when
    it created it. An existing key is never replaced, by the operator or an apply: every signed
    download link and keyed job id would break. To bring your own, create the Secret first."""
    name = builders.signing_secret_name(pool)
    if await kube.get("Secret", pool.namespace, name) is not None:
        return False
    manifest = builders.signing_secret(pool, secrets.token_hex(32))
    try:
        await kube.create(manifest)
    except KubeError as exc:
        if exc.status != 409:  # 409: created meanwhile, and that key stays
            raise
        return False
    return True


async def apply_network_policies(
    kube: Kube, pool: PoolRef, spec: PoolSpec, broker_port: int | None
) -> None:
    """Both policies when enabled; when disabled, those a previous spec created go."""
    if spec.network_policy.enabled:
        await kube.apply(netpol.server_policy(pool, spec, broker_port))
        await kube.apply(netpol.worker_policy(pool, spec, broker_port))
        return
    for component in (names.COMPONENT_SERVER, names.COMPONENT_WORKER):
        name = netpol.policy_name(pool, component)
        if await kube.get("NetworkPolicy", pool.namespace, name) is not None:
            await kube.delete("NetworkPolicy", pool.namespace, name)


async def check_tokens(kube: Kube, pool: PoolRef, spec: PoolSpec) -> AuthProblem | None:
    if spec.auth.tokens_secret is None:
        return None
    secret = await kube.get("Secret", pool.namespace, spec.auth.tokens_secret)
    return tokens_problem(spec.auth, secret)


async def apply_workers(kube: Kube, pool: PoolRef, spec: PoolSpec) -> None:
    """The worker Deployment, whose `spec.replicas` the autoscaling daemon's field manager owns.
    The reconcile applies a count only to create the Deployment (never with the default of 1),
    then the daemon's manager applies the same count, and the reconcile's own apply leaves the
    count out from then on: dropping a field that another manager still owns keeps it, while
    dropping one the reconcile owned alone would reset it. A handover cut short (operator
    restart) is finished on the next reconcile."""
    name = builders.child_name(pool, names.COMPONENT_WORKER)
    live = await kube.get("Deployment", pool.namespace, name)
    if live is None:
        count = workloads.initial_worker_replicas(spec)
        await kube.apply(workloads.worker_deployment(pool, spec, count))
        await autoscaler.write_replicas(kube, pool, count)
    elif (field_managers(live, REPLICAS) & OWNERS) == {names.FIELD_MANAGER}:
        await autoscaler.write_replicas(kube, pool, int(live["spec"].get("replicas") or 0))
    await kube.apply(workloads.worker_deployment(pool, spec))


async def write_status(kube: Kube, pool: PoolRef, status: dict[str, Any]) -> None:
    await kube.patch(names.CRD_KIND, pool.namespace, pool.name, {"status": status}, sub="status")
