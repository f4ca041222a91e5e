"""The three flows the kopf handlers run (reconcile, one autoscaling poll, delete), turning
failures into conditions, events and kopf's retry errors. Handlers stay a few lines each."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable
from typing import Any, Protocol

import kopf

from ffpool import logs, names
from ffpool_operator import metrics
from ffpool_operator.broker import queue_rename, topology
from ffpool_operator.broker.protocols import BrokerError, BrokerNotFound, BrokerRejected
from ffpool_operator.broker.topology import TopologyReport
from ffpool_operator.decisions import broker_status, conditions, drift, rollout, victims
from ffpool_operator.decisions.auth_status import AuthProblem
from ffpool_operator.decisions.broker_status import BrokerProblem
from ffpool_operator.decisions.scaling import Decision, History, QueueStats
from ffpool_operator.flows import apply, autoscale
from ffpool_operator.flows.autoscale import DeploymentSeen
from ffpool_operator.flows.runtime import Runtime
from ffpool_operator.kube import events
from ffpool_operator.kube.client import KubeError
from ffpool_operator.manifests import objects
from ffpool_operator.spec.credentials import MissingSecret
from ffpool_operator.spec.pool import Condition, DeletionPolicy, PoolRef, PoolSpec, WorkersStatus

log = logs.get(__name__)
DELETE_BROKER_WAIT_SECONDS = 60.0


async def _fail(
    rt: Runtime, pool: PoolRef, status: Any, gen: int | None, reason: str, msg: str
) -> None:
    conds = conditions.set_condition(
        _conds(rt, pool, status), conditions.READY, False, reason, msg,
        generation=gen,
    )  # fmt: skip
    await _write(rt, pool, conds, {})


async def _write(rt: Runtime, pool: PoolRef, conds: list[Condition], extra: dict[str, Any]) -> None:
    """Also posts an Event per condition change (events.py): every condition passes here."""
    before = rt.state(pool).conditions or []
    rt.state(pool).conditions = conds
    events.post(pool, events.changes(before, conds), time.monotonic())
    status = {"conditions": conditions.dump(conds), **extra}
    await apply.write_status(rt.kube, pool, status)


def _conds(rt: Runtime, pool: PoolRef, status: Any) -> list[Condition]:
    return rt.conditions(pool, apply.parse_status(status))


async def _topology(rt: Runtime, pool: PoolRef, spec: PoolSpec) -> TopologyReport:
    """Broker trouble does not stop the workloads from being applied: it becomes a report
    carrying the classified problem (its own reason), and a retry."""
    try:
        return await apply.sync_topology(await rt.admin(pool, spec), pool, spec)
    except (MissingSecret, BrokerError) as exc:
        metrics.RECONCILE_ERRORS.labels(pool.namespace, pool.name, "topology").inc()
        return TopologyReport(problem=broker_status.classify(exc))


async def run_reconcile(
    rt: Runtime, pool: PoolRef, spec: Any, status: Any, gen: int | None, retry: int = 0
) -> None:
    try:
        parsed = apply.parse_spec(spec)
    except ValueError as exc:
        await _fail(rt, pool, status, gen, "InvalidSpec", str(exc))
        raise kopf.PermanentError(str(exc)) from exc
    report = await _topology(rt, pool, parsed)
    memory = drift.MEMORY.of(pool.uid)
    plan = drift.ChildPlan(pool_uid=pool.uid, synced=memory.synced)
    try:
        async with memory.lock:  # not next to a repair pass of the previous spec (drift.py)
            memory.generation = gen
            await apply.apply_children(rt.kube, pool, parsed, rt.state(pool).broker_port, plan)
        tokens = await apply.check_tokens(rt.kube, pool, parsed)
        upgrading = rollout.in_progress(_conds(rt, pool, status))
        upgrade = await apply.rollout_plan(rt.kube, pool, parsed, upgrading)
    except KubeError as exc:
        metrics.RECONCILE_ERRORS.labels(pool.namespace, pool.name, "children").inc()
        await _fail(rt, pool, status, gen, "ApplyFailed", str(exc))
        raise kopf.TemporaryError(f"applying children: {exc}", delay=10) from exc
    conds = apply.topology_condition(_conds(rt, pool, status), report, gen)
    conds = topology.overrides_condition(conds, report, gen)
    problem: BrokerProblem | AuthProblem | None = (
        report.problem
        or broker_status.pods_secret_problem(
            parsed.rabbitmq.secret_name, parsed.rabbitmq.amqp_url_key, rt.state(pool).has_amqp_url
        )
        or tokens
    )
    conds = conditions.set_condition(
        conds, conditions.READY, problem is None, problem.reason if problem else "Reconciled",
        problem.message if problem else "owned objects applied", generation=gen,
    )  # fmt: skip
    conflict = drift.trouble(plan.conflicts, [], None)
    conds, memory.saved_ready = drift.with_trouble(conds, conflict, None)
    conds = rollout.with_condition(conds, upgrade, gen)
    rt.state(pool).next_drift_check = time.monotonic() + parsed.topology.drift_check_seconds
    selector = objects.selector_text(pool, names.COMPONENT_WORKER)
    await _write(rt, pool, conds, {"observedGeneration": gen, "workers": {"selector": selector}})
    # A foreign object can go away without the spec changing: retried with back-off too.
    if (trouble := conflict or problem) is not None:
        raise kopf.TemporaryError(trouble.message, delay=broker_status.retry_delay(retry))
    if upgrade.phase is not rollout.Phase.ROLLED_OUT:  # looked at again until it is
        raise kopf.TemporaryError(upgrade.message, delay=rollout.POLL_SECONDS)


def _scaling_status(
    conds: list[Condition], d: Decision, stats: QueueStats | None, seen: DeploymentSeen,
    busy: int, pool: PoolRef,
) -> tuple[list[Condition], dict[str, Any]]:  # fmt: skip
    conds = conditions.set_condition(
        conds, conditions.METRICS_AVAILABLE, d.metrics_available,
        "QueueStatsRead" if d.metrics_available else "ManagementAPIUnavailable", d.reason,
    )  # fmt: skip
    ready = seen.ready
    scaling = (
        "Stable" if ready == d.desired else ("ScalingUp" if ready < d.desired else "ScalingDown")
    )
    conds = conditions.set_condition(
        conds, conditions.SCALING, ready != d.desired, scaling, d.reason
    )
    workers = WorkersStatus(
        desired=d.desired, current=seen.current, ready=ready, busy=busy,
        selector=objects.selector_text(pool, names.COMPONENT_WORKER),
    )  # fmt: skip
    out: dict[str, Any] = {"workers": workers.model_dump(by_alias=True)}
    if stats is not None:
        out["queue"] = stats.model_dump(include={"ready", "unacked", "consumers"})
    if d.changed:
        out |= {"lastScaleTime": conditions.now_iso(), "lastScaleReason": d.reason}
    return conds, out


async def autoscale_once(rt: Runtime, pool: PoolRef, spec: Any, status: Any, body: Any) -> float:
    """One poll; returns the seconds to wait before the next. Never raises for API trouble:
    the daemon keeps polling (a failed poll changes nothing)."""
    try:
        return await _autoscale(rt, pool, spec, status, body)
    except KubeError as exc:
        metrics.RECONCILE_ERRORS.labels(pool.namespace, pool.name, "autoscale").inc()
        log.warning("autoscaling poll failed", pool=pool.name, error=str(exc))
        warning = events.PoolEvent(
            type=events.EventType.WARNING, reason="AutoscalePollFailed", message=str(exc)[:1000]
        )
        events.post(pool, [warning], time.monotonic(), repeat=events.REPEAT_SECONDS)
        return 5.0


class Stopped(Protocol):
    """kopf's DaemonStopped, as far as `pause` uses it."""

    def __bool__(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> Awaitable[object]: ...


async def pause(stopped: Stopped, spec: Any, seconds: float, step: float = 0.25) -> None:
    """Waits `seconds` between polls, but returns early when the pool's spec changes: kopf
    keeps a daemon's `spec` a live view of the object, and a fixed invalid spec or a new
    interval must not wait out the old (up to 30 s) sleep."""
    seen = _snapshot(spec)
    deadline = time.monotonic() + seconds
    while not stopped and (left := deadline - time.monotonic()) > 0:
        await stopped.wait(min(step, left))
        if _snapshot(spec) != seen:
            return


def _snapshot(spec: Any) -> str:
    return json.dumps(dict(spec or {}), sort_keys=True, default=str)  # a view: copy it


async def _autoscale(rt: Runtime, pool: PoolRef, spec: Any, status: Any, body: Any) -> float:
    try:
        parsed = apply.parse_spec(spec)
    except ValueError:
        return 30.0  # the reconcile handler reports invalid specs
    deployment = await rt.kube.get(
        "Deployment", pool.namespace, objects.child_name(pool, names.COMPONENT_WORKER)
    )
    if deployment is None:
        await _workers_missing(rt, pool, status)
        return parsed.autoscaling.polling_interval_seconds
    seen = DeploymentSeen.parse(deployment)
    state = rt.state(pool)
    history = state.history or History(since=time.monotonic())
    result = await autoscale.poll(
        rt.kube, state.stats, pool, parsed, seen.requested, history, state.idle
    )
    decision = result.decision
    state.history, state.idle = decision.history, result.idle
    _observe(pool, result.stats)
    await autoscale.apply(rt.kube, pool, decision, result.pods)
    if decision.changed:
        kopf.info(body, reason="Scaled", message=decision.reason)
    busy = victims.busy_count(result.pods)
    conds, extra = _scaling_status(
        _conds(rt, pool, status), decision, result.stats, seen, busy, pool
    )
    await _write(rt, pool, conds, extra)
    return parsed.autoscaling.polling_interval_seconds


async def _workers_missing(rt: Runtime, pool: PoolRef, status: Any) -> None:
    """Before the first reconcile there is nothing to miss; after it, a missing worker
    Deployment is said (`WorkloadsReady`, `Ready`) until the repair timer has it back."""
    if apply.parse_status(status).observed_generation is None:
        return
    old = _conds(rt, pool, status)
    said = next((c for c in old if c.type == drift.WORKLOADS_READY), None)
    if said is not None and said.reason == drift.DEPLOYMENT_MISSING:
        return  # already said, perhaps with why recreating it fails (the repair's message)
    name = objects.child_name(pool, names.COMPONENT_WORKER)
    log.warning("worker Deployment missing", pool=pool.name, deployment=name)
    memory = drift.MEMORY.of(pool.uid)
    found = drift.missing_trouble(name)
    conds, memory.saved_ready = drift.with_trouble(old, found, memory.saved_ready)
    await _write(rt, pool, conds, {})


def _observe(pool: PoolRef, stats: QueueStats | None) -> None:
    if stats is None:
        metrics.METRICS_FAILURES.labels(pool.namespace, pool.name).inc()
        return
    metrics.QUEUE_READY.labels(pool.namespace, pool.name).set(stats.ready)
    metrics.QUEUE_UNACKED.labels(pool.namespace, pool.name).set(stats.unacked)


async def run_delete(rt: Runtime, pool: PoolRef, spec: Any, body: Any, runtime: float) -> None:
    """Owned objects go by owner references. Queues stay unless the policy says DeleteIfEmpty,
    and then only unused ones; an unreachable broker delays deletion at most a minute."""
    try:
        parsed: PoolSpec | None = apply.parse_spec(spec)
    except ValueError:
        parsed = None
    try:
        if parsed and parsed.topology.deletion_policy is DeletionPolicy.DELETE_IF_EMPTY:
            await _delete_queues(rt, pool, parsed, body)
    except (MissingSecret, BrokerError, KubeError) as exc:
        if runtime < DELETE_BROKER_WAIT_SECONDS:
            raise kopf.TemporaryError(f"broker unavailable: {exc}", delay=10) from exc
        kopf.warn(body, reason="QueuesKept", message=f"broker unreachable, queues kept: {exc}")
    finally:
        rt.forget(pool)
        events.LIMITER.forget(pool.uid)
        queue_rename.WATCH.forget(topology.policy_name(pool))
        drift.MEMORY.forget(pool.uid)


async def _delete_queues(rt: Runtime, pool: PoolRef, spec: PoolSpec, body: Any) -> None:
    """RabbitMQ's `if-empty` counts only ready messages: a queue with jobs in flight would go,
    and those jobs with it. So each queue is read first (exact ready/consumer counts over AMQP
    where possible, unacked from the management API) and kept unless all are zero;
    `if-empty` still guards a publish racing the read."""
    admin = await rt.admin(pool, spec)
    source = rt.state(pool).stats or admin
    plan = topology.plan(pool, spec.topology)
    kept = []
    for queue in plan.queues:
        info = await source.queue(spec.rabbitmq.vhost, queue)
        if info is None:
            continue
        if (why := topology.in_use(info)) is not None:
            kept.append(f"{queue} ({why})")
            continue
        try:
            await admin.delete_queue(spec.rabbitmq.vhost, queue)
        except BrokerNotFound:
            continue  # gone meanwhile
        except BrokerRejected:
            kept.append(f"{queue} (not empty)")
    if kept:
        kopf.warn(body, reason="QueuesKept", message=f"queues still in use, kept: {kept}")
    else:
        await admin.delete_policy(spec.rabbitmq.vhost, plan.policy.name)
