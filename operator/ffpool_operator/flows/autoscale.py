"""The autoscaling flow: one poll of the daemon (handlers.autoscale). Its I/O is in
autoscale_io.py, the decision in decisions/scaling.py."""

from __future__ import annotations

import time
from typing import Any

import kopf

from ffpool import logs, names
from ffpool_operator import metrics
from ffpool_operator.decisions import conditions, drift, pausing, victims
from ffpool_operator.decisions.pausing import Pause
from ffpool_operator.decisions.scaling import Decision, History, QueueStats
from ffpool_operator.flows import autoscale_io, reconcile_io, reporting
from ffpool_operator.flows.autoscale_io import DeploymentSeen
from ffpool_operator.flows.runtime import PoolState, Runtime
from ffpool_operator.kube import events
from ffpool_operator.kube.client import KubeError
from ffpool_operator.manifests import objects
from ffpool_operator.spec.autoscaling_status import AutoscalingStatus
from ffpool_operator.spec.pool import Condition, PoolRef, PoolSpec, WorkersStatus

log = logs.get(__name__)


async def autoscale_once(
    runtime: Runtime, pool: PoolRef, spec: Any, status: Any, body: Any
) -> float:
    """One poll; returns the seconds to wait before the next. Never raises for API trouble:
    the daemon keeps polling (a failed poll changes nothing)."""
    state = runtime.state(pool)
    try:
        return await _poll(runtime, state, pool, spec, status, body)
    except KubeError as exc:
        metrics.RECONCILE_ERRORS.labels(pool.namespace, pool.name, "autoscale").inc()
        log.warning("autoscaling poll failed", pool=pool.name, error=str(exc))
        warning = events.PoolEvent(
            type=events.EventType.WARNING, reason="AutoscalePollFailed", message=str(exc)[:1000]
        )
        events.post(pool, [warning], time.monotonic(), repeat=events.REPEAT_SECONDS)
        return 5.0
    finally:
        if state.deleted:
            # The pool was deleted while this poll was in flight: its gauges, set after the
            # delete handler dropped them, would bring back a ghost pool on the dashboards.
            metrics.forget_pool(pool.namespace, pool.name)


async def _poll(
    runtime: Runtime, state: PoolState, pool: PoolRef, spec: Any, status: Any, body: Any
) -> float:
    try:
        parsed = reconcile_io.parse_spec(spec)
    except ValueError:
        return 30.0  # the reconcile handler reports invalid specs
    deployment = await runtime.kube.get(
        "Deployment", pool.namespace, objects.child_name(pool, names.COMPONENT_WORKER)
    )
    if deployment is None:
        await _workers_missing(runtime, pool, status)
        return parsed.autoscaling.polling_interval_seconds
    seen = DeploymentSeen.parse(deployment)
    pause = pausing.parse((body.get("metadata") or {}).get("annotations"))
    result = await read_and_decide(runtime, state, pool, parsed, seen, status, pause)
    decision = result.decision
    _observe(pool, result.stats)
    await autoscale_io.apply(runtime.kube, pool, decision, result.pods)
    if decision.changed:
        kopf.info(body, reason="Scaled", message=decision.reason)
    _announce_pause(pool, state, pause, status)
    metrics.observe_autoscaling(
        pool.namespace, pool.name, paused=decision.paused, fallback=decision.fallback
    )
    await _report(runtime, pool, parsed, status, result, seen, pause)
    return parsed.autoscaling.polling_interval_seconds


async def read_and_decide(
    runtime: Runtime,
    state: PoolState,
    pool: PoolRef,
    parsed: PoolSpec,
    seen: DeploymentSeen,
    status: Any,
    pause: Pause,
) -> autoscale_io.PollResult:
    """Reads the queue and decides; keeps what the next poll needs in the pool's state."""
    if state.history is None:
        state.failed_polls = restored_failed_polls(status)
    history = state.history or History(since=time.monotonic())
    # The clients the last reconcile or drift check read: none yet means not started yet.
    source = state.broker.stats if state.broker is not None else None
    result = await autoscale_io.poll(
        runtime.kube,
        source,
        pool,
        parsed,
        seen.requested,
        history,
        state.idle,
        state.failed_polls,
        pause,
    )
    state.history, state.idle = result.decision.history, result.idle
    state.failed_polls = result.failed_polls
    return result


def restored_failed_polls(status: Any) -> int:
    """The failed-poll count the status kept, on a pool's first poll since the operator
    started: a restart in an outage must not restart the count at 0 (and leave the fallback)."""
    said = reconcile_io.parse_status(status).autoscaling
    return 0 if said is None else said.failed_polls


async def _report(
    runtime: Runtime,
    pool: PoolRef,
    parsed: PoolSpec,
    status: Any,
    result: autoscale_io.PollResult,
    seen: DeploymentSeen,
    pause: Pause,
) -> None:
    decision = result.decision
    busy = victims.busy_count(result.pods)
    top = parsed.autoscaling.max_replicas if parsed.autoscaling.enabled else parsed.workers.replicas
    metrics.observe_workers(pool.namespace, pool.name, maximum=top, current=seen.current, busy=busy)
    known = reporting.known_conditions(runtime, pool, status)
    written, extra = _scaling_status(known, decision, result.stats, seen, busy, pool)
    extra["autoscaling"] = _autoscaling_status(pause, decision, result.failed_polls)
    await reporting.report(runtime, pool, written, extra)


def _autoscaling_status(pause: Pause, decision: Decision, failed_polls: int) -> dict[str, Any]:
    return AutoscalingStatus(
        paused=pause.paused,
        paused_replicas=pause.replicas,
        fallback=decision.fallback,
        failed_polls=failed_polls,
    ).model_dump(by_alias=True)


def pause_events(was_paused: bool, pause: Pause) -> list[events.PoolEvent]:
    """A Normal Event when a pause begins or ends, a Warning per invalid annotation."""
    normal, warning = events.EventType.NORMAL, events.EventType.WARNING
    out = [
        events.PoolEvent(type=warning, reason="InvalidPauseAnnotation", message=problem)
        for problem in pause.problems
    ]
    if pause.paused and not was_paused:
        held = "where it is" if pause.replicas is None else f"at {pause.replicas}"
        message = f"autoscaling paused by annotation: the worker count is held {held}"
        out.append(events.PoolEvent(type=normal, reason="AutoscalingPaused", message=message))
    elif was_paused and not pause.paused:
        message = (
            "pause annotation invalid: autoscaling resumed"
            if pause.problems
            else "pause annotations removed: autoscaling resumed"
        )
        out.append(events.PoolEvent(type=normal, reason="AutoscalingResumed", message=message))
    return out


def _announce_pause(pool: PoolRef, state: PoolState, pause: Pause, status: Any) -> None:
    """After an operator restart the status says whether the pool was paused: no new Event."""
    was = state.paused
    if was is None:
        said = reconcile_io.parse_status(status).autoscaling
        was = said is not None and said.paused
    state.paused = pause.paused
    found = pause_events(was, pause)
    now = time.monotonic()
    events.post(pool, [e for e in found if e.type is events.EventType.NORMAL], now)
    # An invalid annotation is said once in events.REPEAT_SECONDS, however often it is seen.
    warnings = [e for e in found if e.type is events.EventType.WARNING]
    events.post(pool, warnings, now, repeat=events.REPEAT_SECONDS)


def _scaling_status(
    known: list[Condition],
    decision: Decision,
    stats: QueueStats | None,
    seen: DeploymentSeen,
    busy: int,
    pool: PoolRef,
) -> tuple[list[Condition], dict[str, Any]]:
    written = conditions.set_condition(
        known,
        conditions.METRICS_AVAILABLE,
        decision.metrics_available,
        "QueueStatsRead" if decision.metrics_available else "ManagementAPIUnavailable",
        decision.reason,
    )
    ready, desired = seen.ready, decision.desired
    scaling = "Stable" if ready == desired else ("ScalingUp" if ready < desired else "ScalingDown")
    if decision.paused:
        scaling = "PausedByAnnotation"
    written = conditions.set_condition(
        written, conditions.SCALING, ready != desired, scaling, decision.reason
    )
    workers = WorkersStatus(
        desired=desired,
        current=seen.current,
        ready=ready,
        busy=busy,
        selector=objects.selector_text(pool, names.COMPONENT_WORKER),
    )
    extra: dict[str, Any] = {"workers": workers.model_dump(by_alias=True)}
    if stats is not None:
        extra["queue"] = stats.model_dump(include={"ready", "unacked", "consumers"})
    if decision.changed:
        extra |= {"lastScaleTime": conditions.now_iso(), "lastScaleReason": decision.reason}
    return written, extra


async def _workers_missing(runtime: Runtime, pool: PoolRef, status: Any) -> None:
    """Before the first reconcile there is nothing to miss; after it, a missing worker
    Deployment is said (`WorkloadsReady`, `Ready`) until the repair timer has it back."""
    if reconcile_io.parse_status(status).observed_generation is None:
        return
    known = reporting.known_conditions(runtime, pool, status)
    said = next((c for c in known if c.type == drift.WORKLOADS_READY), None)
    if said is not None and said.reason == drift.DEPLOYMENT_MISSING:
        return  # already said, perhaps with why recreating it fails (the repair's message)
    name = objects.child_name(pool, names.COMPONENT_WORKER)
    log.warning("worker Deployment missing", pool=pool.name, deployment=name)
    memory = drift.MEMORY.of(pool.uid)
    found = drift.missing_trouble(name)
    written, memory.saved_ready = drift.with_trouble(known, found, memory.saved_ready)
    await reporting.report(runtime, pool, written, {})


def _observe(pool: PoolRef, stats: QueueStats | None) -> None:
    if stats is None:
        metrics.METRICS_FAILURES.labels(pool.namespace, pool.name).inc()
        return
    metrics.QUEUE_READY.labels(pool.namespace, pool.name).set(stats.ready)
    metrics.QUEUE_UNACKED.labels(pool.namespace, pool.name).set(stats.unacked)
