"""The reconcile flow (create, update, resume): declare the broker topology, apply the owned
objects, and say how it went in conditions, Events and kopf's retry errors."""

from __future__ import annotations

import time
from typing import Any

import kopf

from ffpool import names
from ffpool_operator import metrics
from ffpool_operator.broker import topology
from ffpool_operator.broker.topology import TopologyReport
from ffpool_operator.decisions import broker_status, conditions, drift, rollout
from ffpool_operator.decisions.auth_status import AuthProblem
from ffpool_operator.decisions.broker_model import BrokerError
from ffpool_operator.decisions.broker_status import BrokerProblem
from ffpool_operator.flows import monitoring, reconcile_io, reporting
from ffpool_operator.flows.runtime import Runtime
from ffpool_operator.kube.client import KubeError
from ffpool_operator.manifests import objects
from ffpool_operator.spec.credentials import MissingSecret
from ffpool_operator.spec.pool import Condition, PoolRef, PoolSpec


async def declare_topology(runtime: Runtime, pool: PoolRef, spec: PoolSpec) -> TopologyReport:
    """Reads the broker Secret and declares the topology; the clients read are handed to the
    autoscaling poll and the repair pass through the pool's state. Broker trouble does not stop
    the workloads from being applied: it becomes a report carrying the classified problem (its
    own reason), and a retry."""
    try:
        clients = await runtime.broker_clients(pool, spec)
        runtime.state(pool).broker = clients
        return await reconcile_io.sync_topology(clients.admin, pool, spec)
    except (MissingSecret, BrokerError) as exc:
        metrics.RECONCILE_ERRORS.labels(pool.namespace, pool.name, "topology").inc()
        return TopologyReport(problem=broker_status.classify(exc))


async def run_reconcile(
    runtime: Runtime, pool: PoolRef, spec: Any, status: Any, generation: int | None, retry: int = 0
) -> None:
    try:
        parsed = reconcile_io.parse_spec(spec)
    except ValueError as exc:
        await reporting.report_failure(runtime, pool, status, generation, "InvalidSpec", str(exc))
        raise kopf.PermanentError(str(exc)) from exc
    report = await declare_topology(runtime, pool, parsed)
    memory = drift.MEMORY.of(pool.uid)
    plan = drift.ChildPlan(pool_uid=pool.uid, synced=memory.synced)
    tokens, upgrade = await _apply_workloads(runtime, pool, parsed, status, generation, plan)
    written = reconcile_io.topology_condition(
        reporting.known_conditions(runtime, pool, status), report, generation
    )
    written = topology.overrides_condition(written, report, generation)
    written = topology.health_condition(written, report, parsed.topology.quorum, generation)
    problem = _problem(runtime, pool, parsed, report.problem, tokens)
    written = _ready(written, problem, generation)
    conflict = drift.trouble(plan.conflicts, [], None)
    written, memory.saved_ready = drift.with_trouble(written, conflict, None)
    written = rollout.with_condition(written, upgrade, generation)
    watched = await monitoring.apply_pod_monitor(runtime.kube, pool, parsed)
    written = monitoring.with_condition(written, watched, generation)
    runtime.state(pool).next_drift_check = time.monotonic() + parsed.topology.drift_check_seconds
    selector = objects.selector_text(pool, names.COMPONENT_WORKER)
    extra = {
        "observedGeneration": generation,
        "workers": {"selector": selector},
        **topology.status_of(report),
    }
    await reporting.report(runtime, pool, written, extra)
    # A foreign object can go away without the spec changing: retried with back-off too.
    if (trouble := conflict or problem) is not None:
        raise kopf.TemporaryError(trouble.message, delay=broker_status.retry_delay(retry))
    if upgrade.phase is not rollout.Phase.ROLLED_OUT:  # looked at again until it is
        raise kopf.TemporaryError(upgrade.message, delay=rollout.POLL_SECONDS)
    if watched is not None and not watched.ready:  # the pool works: only its scrape waits
        raise kopf.TemporaryError(watched.message, delay=monitoring.RETRY_SECONDS)


def _problem(
    runtime: Runtime,
    pool: PoolRef,
    spec: PoolSpec,
    topology_problem: BrokerProblem | None,
    tokens: AuthProblem | None,
) -> BrokerProblem | AuthProblem | None:
    """What keeps the pool from Ready: the broker first, then the pods' Secret, then auth."""
    return (
        topology_problem
        or broker_status.pods_secret_problem(
            spec.rabbitmq.secret_name,
            spec.rabbitmq.amqp_url_key,
            runtime.state(pool).has_amqp_url,
        )
        or tokens
    )


async def _apply_workloads(
    runtime: Runtime,
    pool: PoolRef,
    spec: PoolSpec,
    status: Any,
    generation: int | None,
    plan: drift.ChildPlan,
) -> tuple[AuthProblem | None, rollout.Plan]:
    """Applies the owned objects; returns what the tokens Secret lacks and where an image
    rollout stands. A Kubernetes API failure is reported and retried (kopf.TemporaryError)."""
    memory = drift.MEMORY.of(pool.uid)
    try:
        async with memory.lock:  # not next to a repair pass of the previous spec (drift.py)
            memory.generation = generation
            port = runtime.state(pool).broker_port
            await reconcile_io.apply_children(runtime.kube, pool, spec, port, plan)
        tokens = await reconcile_io.check_tokens(runtime.kube, pool, spec)
        upgrading = rollout.in_progress(reporting.known_conditions(runtime, pool, status))
        upgrade = await reconcile_io.rollout_plan(runtime.kube, pool, spec, upgrading)
    except KubeError as exc:
        metrics.RECONCILE_ERRORS.labels(pool.namespace, pool.name, "children").inc()
        await reporting.report_failure(runtime, pool, status, generation, "ApplyFailed", str(exc))
        raise kopf.TemporaryError(f"applying children: {exc}", delay=10) from exc
    return tokens, upgrade


def _ready(
    written: list[Condition], problem: BrokerProblem | AuthProblem | None, generation: int | None
) -> list[Condition]:
    return conditions.set_condition(
        written,
        conditions.READY,
        problem is None,
        problem.reason if problem else "Reconciled",
        problem.message if problem else "owned objects applied",
        generation=generation,
    )
