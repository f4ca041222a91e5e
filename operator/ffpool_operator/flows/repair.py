"""The repair timer's pass for one pool (I/O): read every owned object, re-apply what is missing
or differs from the spec, leave alone what is not the pool's, and say so in conditions and
Events. Decisions are drift.py's (docs/operator.md, "Drift and ownership")."""

from __future__ import annotations

import time
from typing import Any

from ffpool import logs
from ffpool_operator import metrics
from ffpool_operator.decisions import drift
from ffpool_operator.flows import reconcile_io, reporting
from ffpool_operator.flows.runtime import Runtime
from ffpool_operator.kube import events
from ffpool_operator.kube.client import KubeError
from ffpool_operator.spec.pool import PoolRef

log = logs.get(__name__)
RECREATED = "Recreated"
DRIFT_REPAIRED = "DriftRepaired"


def repair_events(plan: drift.ChildPlan) -> list[events.PoolEvent]:
    warn = events.EventType.WARNING
    return [
        events.PoolEvent(type=warn, reason=RECREATED, message=f"{k} was missing: recreated")
        for k in plan.created
    ] + [
        events.PoolEvent(
            type=warn,
            reason=DRIFT_REPAIRED,
            message=f"{k} differed from the pool's spec: re-applied (change the pool instead)",
        )
        for k in plan.repaired
    ]


def due(status: Any, generation: int | None) -> bool:
    """Only a pool the reconcile has handled at its current generation: before that (or while
    a changed spec is being applied) the reconcile itself applies everything."""
    observed = reconcile_io.parse_status(status).observed_generation
    return observed is not None and observed == generation


async def repair_once(
    runtime: Runtime, pool: PoolRef, spec: Any, status: Any, generation: int | None
) -> None:
    if not due(status, generation):
        return
    try:
        parsed = reconcile_io.parse_spec(spec)
    except ValueError:
        return  # the reconcile reports invalid specs
    memory = drift.MEMORY.of(pool.uid)
    plan = drift.ChildPlan(pool_uid=pool.uid, repair=True, synced=memory.synced)
    failure = None
    async with memory.lock:
        if not memory.current(generation):
            return  # the spec changed meanwhile: the reconcile applied the new one
        try:
            port = runtime.state(pool).broker_port  # as the last reconcile or drift check read it
            await reconcile_io.apply_children(runtime.kube, pool, parsed, port, plan)
        except KubeError as exc:
            metrics.RECONCILE_ERRORS.labels(pool.namespace, pool.name, "repair").inc()
            failure = str(exc)
    found = drift.trouble(plan.conflicts, plan.missing_deployments(), failure)
    if plan.created or plan.repaired or found is not None:
        log.warning(
            "owned objects drifted",
            pool=pool.name,
            created=plan.created,
            repaired=plan.repaired,
            trouble=found.message if found else None,
        )
    events.post(pool, repair_events(plan), time.monotonic())
    known = reporting.known_conditions(runtime, pool, status)
    written, memory.saved_ready = drift.with_trouble(known, found, memory.saved_ready)
    if {c.type: c for c in written} != {c.type: c for c in known}:
        await reporting.report(runtime, pool, written, {})
