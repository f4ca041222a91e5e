"""The pool's Prometheus Operator objects (I/O), applied by the reconcile: the PodMonitor when
`monitoring.podMonitor.enabled`, deleted when not (only the pool's own). Without the Prometheus
Operator's CRDs the pool is not failed: its `MonitoringReady` condition says so and the reconcile
tries again later (docs/monitoring.md, "Prometheus Operator")."""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel, ConfigDict

from ffpool import logs
from ffpool_operator.decisions import conditions
from ffpool_operator.decisions.ownership import Conflict, Owner, describe_owner, owner_of
from ffpool_operator.kube.client import Kube, KubeError
from ffpool_operator.manifests import monitoring
from ffpool_operator.spec.pool import Condition, PoolRef, PoolSpec

log = logs.get(__name__)
MONITORING_READY: Final = "MonitoringReady"
OPERATOR_MISSING: Final = "PrometheusOperatorMissing"
# The CRDs are installed by hand or by another chart: a minute is soon enough to notice.
RETRY_SECONDS: Final = 60.0


class MonitoringState(BaseModel):
    model_config = ConfigDict(frozen=True)

    ready: bool
    reason: str
    message: str


async def apply_pod_monitor(kube: Kube, pool: PoolRef, spec: PoolSpec) -> MonitoringState | None:
    """None when no PodMonitor is wanted (one of the pool's left from before is deleted)."""
    wanted = spec.monitoring.pod_monitor.enabled
    name = monitoring.pod_monitor_name(pool)
    try:
        live = await kube.get("PodMonitor", pool.namespace, name)
        if not wanted:
            if owner_of(live, pool.uid) is Owner.OWN:
                await kube.delete("PodMonitor", pool.namespace, name)
            return None
        if owner_of(live, pool.uid) is Owner.FOREIGN and live is not None:
            conflict = Conflict(kind=monitoring.KIND, name=name, owner=describe_owner(live))
            return MonitoringState(
                ready=False, reason="PodMonitorConflict", message=conflict.message
            )
        manifest = monitoring.pod_monitor(pool, spec)
        await kube.apply(manifest)
    except KubeError as exc:
        return _failed(pool, wanted, exc)
    return MonitoringState(
        ready=True,
        reason="PodMonitorApplied",
        message=f"PodMonitor {name} scrapes the servers' and workers' ops port",
    )


def _failed(pool: PoolRef, wanted: bool, exc: KubeError) -> MonitoringState | None:
    log.warning("pod monitor not reconciled", pool=pool.name, wanted=wanted, error=str(exc))
    if not wanted:
        return None  # nothing asked for: a stale one is tried again at the next reconcile
    if exc.status == 404:
        return MonitoringState(
            ready=False,
            reason=OPERATOR_MISSING,
            message="the PodMonitor CRD (monitoring.coreos.com/v1) is not installed: install the"
            " Prometheus Operator, or set monitoring.podMonitor.enabled to false",
        )
    return MonitoringState(ready=False, reason="PodMonitorFailed", message=str(exc))


def with_condition(
    written: list[Condition], state: MonitoringState | None, generation: int | None
) -> list[Condition]:
    """`MonitoringReady` while a PodMonitor is wanted; no such condition otherwise."""
    if state is None:
        return [c for c in written if c.type != MONITORING_READY]
    return conditions.set_condition(
        written, MONITORING_READY, state.ready, state.reason, state.message, generation=generation
    )
