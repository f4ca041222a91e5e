"""The reconcile flow's I/O (reconcile.py; the repair pass and drift check use parts of it):
parse the spec, declare the topology, apply the owned objects, write status. The decisions are
in the pure modules; this only reads, calls them and writes."""

from __future__ import annotations

import secrets
from typing import Any

from pydantic import ValidationError

from ffpool import logs, names
from ffpool_operator.broker import topology
from ffpool_operator.broker.topology import TopologyReport
from ffpool_operator.decisions import conditions, rollout
from ffpool_operator.decisions.auth_status import AuthProblem, tokens_problem
from ffpool_operator.decisions.broker_model import BrokerAdmin
from ffpool_operator.decisions.drift import ChildPlan
from ffpool_operator.decisions.ownership import Owner, owner_of
from ffpool_operator.flows import autoscale_io
from ffpool_operator.flows.disruption_io import apply_disruption_budgets
from ffpool_operator.kube.client import Kube, KubeError, field_managers
from ffpool_operator.manifests import deployments, network_policies, objects
from ffpool_operator.spec.pool import Condition, PoolRef, PoolSpec, PoolStatus

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
    report = await topology.ensure(admin, spec.rabbitmq.vhost, topology.plan(pool, spec.topology))
    if report.created:
        log.info("topology declared", pool=pool.name, created=report.created)
    if report.conflicts:
        log.warning("topology conflicts", pool=pool.name, conflicts=report.conflicts)
    return report


def topology_condition(
    known: list[Condition], report: TopologyReport, generation: int | None
) -> list[Condition]:
    status, reason, message = _topology_state(report)
    return conditions.set_condition(
        known, conditions.TOPOLOGY_READY, status, reason, message, generation=generation
    )


_EXCHANGE_HINT = (
    ". RabbitMQ cannot change an exchange's type or flags: delete it or revert the spec."
)
_QUEUE_HINT = (
    ". RabbitMQ cannot change a queue's arguments: delete and recreate the queue, or revert"
    " the spec (TTL/max-length/overflow/dead-lettering also apply through the pool's policy)."
)


_TYPE_HINT = (
    ". RabbitMQ cannot change a queue's type in place. To migrate, give the pool new queue"
    " names (topology.jobQueue, topology.dlqQueue): the operator declares them with the new"
    " type, the old queue is unbound and keeps its jobs until they drain (condition"
    ' OldQueueNotEmpty), then delete it (docs/operator.md, "Quorum queues").'
)


def _topology_state(report: TopologyReport) -> tuple[bool | None, str, str]:
    if report.problem is not None:
        return report.problem.topology, report.problem.reason, report.problem.message
    if report.exchange_conflict is not None:
        return False, "ExchangeConflict", report.exchange_conflict + _EXCHANGE_HINT
    if report.type_changes:
        return False, "QueueTypeChange", "; ".join(report.type_changes) + _TYPE_HINT
    if report.conflicts:
        return False, "QueueArgumentsDiffer", "; ".join(report.conflicts) + _QUEUE_HINT
    return True, "Declared", ""


async def apply_children(
    kube: Kube,
    pool: PoolRef,
    spec: PoolSpec,
    broker_port: int | None = None,
    plan: ChildPlan | None = None,
) -> ChildPlan:
    """Server-side apply of every owned object (kube/client.py): what the spec no longer asks
    for goes, what other managers set stays. Each object is read first and left alone when it is
    not the pool's (`plan.conflicts`); a repair pass (`plan.repair`) applies only what is missing or
    differs. The signing key is the exception: created once, never applied, and one the user
    created is used as it is. `broker_port` (from the AMQP URL) is the NetworkPolicy's egress
    port."""
    plan = plan or ChildPlan(pool_uid=pool.uid)
    namespace = pool.namespace
    if await ensure_signing_secret(kube, pool) and plan.repair:
        plan.created.append(f"Secret {objects.signing_secret_name(pool)}")
    await apply_network_policies(kube, pool, spec, broker_port, plan)
    config_map = objects.config_map(pool, spec)
    if plan.wants(
        config_map, await kube.get("ConfigMap", namespace, objects.config_map_name(pool))
    ):
        plan.applied(config_map, await kube.apply(config_map))
    service = objects.service(pool, spec)
    if plan.wants(service, await kube.get("Service", namespace, objects.service_name(pool))):
        plan.applied(service, await kube.apply(service))
    server = deployments.server_deployment(pool, spec)
    live = await kube.get("Deployment", namespace, objects.child_name(pool, names.COMPONENT_SERVER))
    if plan.wants(server, live):
        plan.applied(server, await kube.apply(server))
    await apply_workers(kube, pool, spec, plan)
    await apply_ingress(kube, pool, spec, plan)
    await apply_disruption_budgets(kube, pool, spec, plan)
    return plan


async def apply_ingress(kube: Kube, pool: PoolRef, spec: PoolSpec, plan: ChildPlan) -> None:
    """Applied when enabled; when disabled, deleted only if it is the pool's."""
    ingress = objects.ingress(pool, spec)
    live = await kube.get("Ingress", pool.namespace, objects.service_name(pool))
    if ingress is not None:
        if plan.wants(ingress, live):
            plan.applied(ingress, await kube.apply(ingress))
    elif owner_of(live, pool.uid) is Owner.OWN:
        await kube.delete("Ingress", pool.namespace, objects.service_name(pool))


async def ensure_signing_secret(kube: Kube, pool: PoolRef) -> bool:
    """Creates the pool's signing key (32 random bytes, hex) unless its Secret exists; True when
    it created it. An existing key is never replaced, by the operator or an apply: every signed
    download link and keyed job id would break. To bring your own, create the Secret first."""
    name = objects.signing_secret_name(pool)
    if await kube.get("Secret", pool.namespace, name) is not None:
        return False
    manifest = objects.signing_secret(pool, secrets.token_hex(32))
    try:
        await kube.create(manifest)
    except KubeError as exc:
        if exc.status != 409:  # 409: created meanwhile, and that key stays
            raise
        return False
    return True


async def apply_network_policies(
    kube: Kube, pool: PoolRef, spec: PoolSpec, broker_port: int | None, plan: ChildPlan
) -> None:
    """Both policies when enabled; when disabled, those a previous spec created go (and only
    those: a policy of the same name that is not the pool's stays)."""
    namespace = pool.namespace
    server_name = network_policies.policy_name(pool, names.COMPONENT_SERVER)
    worker_name = network_policies.policy_name(pool, names.COMPONENT_WORKER)
    if spec.network_policy.enabled:
        server = network_policies.server_policy(pool, spec, broker_port)
        if plan.wants(server, await kube.get("NetworkPolicy", namespace, server_name)):
            plan.applied(server, await kube.apply(server))
        worker = network_policies.worker_policy(pool, spec, broker_port)
        if plan.wants(worker, await kube.get("NetworkPolicy", namespace, worker_name)):
            plan.applied(worker, await kube.apply(worker))
        return
    for name in (server_name, worker_name):
        if owner_of(await kube.get("NetworkPolicy", namespace, name), pool.uid) is Owner.OWN:
            await kube.delete("NetworkPolicy", namespace, name)


async def check_tokens(kube: Kube, pool: PoolRef, spec: PoolSpec) -> AuthProblem | None:
    if spec.auth.tokens_secret is None:
        return None
    secret = await kube.get("Secret", pool.namespace, spec.auth.tokens_secret)
    return tokens_problem(spec.auth, secret)


async def apply_workers(kube: Kube, pool: PoolRef, spec: PoolSpec, plan: ChildPlan) -> None:
    """The worker Deployment, whose `spec.replicas` the autoscaling daemon's field manager owns.
    The reconcile applies a count only to create the Deployment (never with the default of 1),
    then the daemon's manager applies the same count, and the reconcile's own apply leaves the
    count out from then on: dropping a field that another manager still owns keeps it, while
    dropping one the reconcile owned alone would reset it. A handover cut short (operator
    restart) is finished on the next reconcile. A recreated Deployment starts from that count
    too, and the daemon sets its own at its next poll."""
    name = objects.child_name(pool, names.COMPONENT_WORKER)
    live = await kube.get("Deployment", pool.namespace, name)
    # A new image reaches the workers only once the servers run it (rollout.py).
    upgrade = rollout.plan(
        spec.image, await _view(kube, pool, names.COMPONENT_SERVER), _parse(live)
    )
    spec = spec.model_copy(update={"image": upgrade.worker_image})
    desired = deployments.worker_deployment(pool, spec)
    if not plan.wants(desired, live):
        return
    if live is None:
        count = deployments.initial_worker_replicas(spec)
        await kube.apply(deployments.worker_deployment(pool, spec, count))
        await autoscale_io.write_replicas(kube, pool, count)
    elif (field_managers(live, REPLICAS) & OWNERS) == {names.FIELD_MANAGER}:
        await autoscale_io.write_replicas(kube, pool, int(live["spec"].get("replicas") or 0))
    plan.applied(desired, await kube.apply(desired))


async def rollout_plan(kube: Kube, pool: PoolRef, spec: PoolSpec, upgrading: bool) -> rollout.Plan:
    """Where an image rollout stands, from both Deployments as they are now."""
    servers = await _view(kube, pool, names.COMPONENT_SERVER)
    workers = await _view(kube, pool, names.COMPONENT_WORKER)
    return rollout.plan(spec.image, servers, workers, upgrading)


async def _view(kube: Kube, pool: PoolRef, component: str) -> rollout.DeploymentView | None:
    return _parse(await kube.get("Deployment", pool.namespace, objects.child_name(pool, component)))


def _parse(live: dict[str, Any] | None) -> rollout.DeploymentView | None:
    return rollout.DeploymentView.parse(live) if live is not None else None


async def write_status(kube: Kube, pool: PoolRef, status: dict[str, Any]) -> None:
    await kube.patch(names.CRD_KIND, pool.namespace, pool.name, {"status": status}, sub="status")
