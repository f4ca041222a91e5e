"""KEDA's RabbitMQ scaler driving an HPA, with their defaults, as a pure policy (no I/O): the
benchmark's baseline. Defaults and sources: docs/design/autoscaling.md.

Two loops, as in a cluster:
- KEDA's own loop (every `polling_s`) owns 0 <-> 1: active (metric > activationValue) at zero
  replicas -> 1; inactive for `cooldown_s` since it was last active -> 0.
- The HPA (every `sync_s`, only while replicas > 0) owns 1..max: AverageValue target,
  ceil(metric / target) outside a 10 % tolerance; up at once but at most max(+100 %, +4 pods)
  per sync; down to the highest recommendation of the last `down_window_s`.
The metric is the QueueLength KEDA reads: with an `amqp://` host (the default protocol for it)
a passive queue.declare, i.e. READY messages only; with an `http://` host the management API's
`messages` (ready + unacked, lagging statistics). The caller reads it; this only decides.
"""

from __future__ import annotations

import itertools
import math

from pydantic import BaseModel, ConfigDict, Field

MAX_TAIL_SECONDS = 24 * 3600.0  # a projection never runs longer than this


class KedaSpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    polling_s: float = 30.0
    sync_s: float = 15.0
    target: float = Field(default=20.0, gt=0)
    activation: float = 0.0
    min_replicas: int = 0
    max_replicas: int = 100
    cooldown_s: float = 300.0
    down_window_s: float = 300.0
    tolerance: float = 0.1
    up_pods: int = 4
    up_percent: float = 100.0


class KedaState(BaseModel):
    model_config = ConfigDict(frozen=True)

    replicas: int = 0
    last_active: float | None = None
    recommendations: tuple[tuple[float, int], ...] = ()
    """(time, recommendation) of the HPA syncs inside the scale-down window."""


def keda_poll(spec: KedaSpec, state: KedaState, metric: float, now: float) -> KedaState:
    if metric > spec.activation:
        replicas = state.replicas or max(spec.min_replicas, 1)
        return state.model_copy(update={"replicas": replicas, "last_active": now})
    idle_for = math.inf if state.last_active is None else now - state.last_active
    if state.replicas > 0 and spec.min_replicas == 0 and idle_for >= spec.cooldown_s:
        return state.model_copy(update={"replicas": 0, "recommendations": ()})
    return state


def hpa_recommend(spec: KedaSpec, current: int, metric: float) -> int:
    ratio = metric / (spec.target * current)
    raw = current if abs(ratio - 1.0) <= spec.tolerance else math.ceil(metric / spec.target)
    return min(max(raw, max(spec.min_replicas, 1)), spec.max_replicas)


def hpa_sync(spec: KedaSpec, state: KedaState, metric: float, now: float) -> KedaState:
    current = state.replicas
    if current == 0:
        return state  # scaling is disabled at zero: KEDA's loop activates
    rec = hpa_recommend(spec, current, metric)
    kept = tuple(r for r in state.recommendations if now - r[0] < spec.down_window_s)
    recs = (*kept, (now, rec))
    if rec > current:
        limit = max(current + spec.up_pods, math.floor(current * (1 + spec.up_percent / 100)))
        desired = min(rec, limit, spec.max_replicas)
    else:
        desired = min(current, max(r for _, r in recs))
    return state.model_copy(update={"replicas": desired, "recommendations": recs})


def project(
    spec: KedaSpec,
    state: KedaState,
    start: float,
    next_poll: float,
    next_sync: float,
    metric: float = 0.0,
) -> list[tuple[float, int]]:
    """Replicas from `start` on with a constant metric, as (time, replicas) steps, until zero
    replicas (or MAX_TAIL_SECONDS): the idle tail after the last job, without waiting for it."""
    steps = [(start, state.replicas)]
    while state.replicas > 0 and min(next_poll, next_sync) - start < MAX_TAIL_SECONDS:
        if next_sync <= next_poll:
            state, now = hpa_sync(spec, state, metric, next_sync), next_sync
            next_sync += spec.sync_s
        else:
            state, now = keda_poll(spec, state, metric, next_poll), next_poll
            next_poll += spec.polling_s
        if state.replicas != steps[-1][1]:
            steps.append((now, state.replicas))
    return steps


def area(steps: list[tuple[float, int]], end: float | None = None) -> float:
    """Replica-seconds under a step timeline; the last step lasts until `end` (default: none)."""
    total = 0.0
    for (t, replicas), (t_next, _) in itertools.pairwise(steps):
        total += replicas * (t_next - t)
    if end is not None and steps:
        total += steps[-1][1] * max(0.0, end - steps[-1][0])
    return total
