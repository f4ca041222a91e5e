"""The autoscaling decision: a pure function of (queue stats, current and busy workers, spec,
history, now). No I/O here; flows/autoscale.py reads the inputs and applies the result.

Rules (docs/design/autoscaling.md for why):
- recommended = ceil((ready + in flight) / target per worker), clamped to [min, max]; counting
  in-flight jobs keeps workers that are still processing from being scaled to zero.
- From zero only when the backlog exceeds the activation threshold.
- Up at once (or after the scale-up window); down to the *highest* recommendation seen during
  the whole scale-down window, so zero needs a whole window of nothing ready or in flight.
- Never below the busy workers; missing metrics never scale down: hold, or raise to the fallback
  once metrics were missing `fallbackFailureThreshold` polls in a row (KEDA's failureThreshold:
  one lost poll is not an outage). What a poll without metrics decides is recorded in the
  history as a sample: when metrics return, the count comes down from the fallback through the
  scale-down window (as KEDA's fallback does through the HPA's), not at the first good poll.
- Never above the max, at once when it is lowered (busy workers still kept).
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field

from ffpool_operator.spec.pool import AutoscalingSpec


class QueueStats(BaseModel):
    model_config = ConfigDict(frozen=True)

    ready: int = Field(ge=0)
    unacked: int = Field(ge=0)
    consumers: int = Field(ge=0, default=0)

    @property
    def backlog(self) -> int:
        return self.ready + self.unacked


def total(bands: list[QueueStats]) -> QueueStats | None:
    """The pool's queue over its priority bands (quorum mode): every band's ready and in-flight
    jobs are the backlog. Consumers: the most on one band, as a worker slot waiting for a job
    may consume on several bands at once, and a slot running one holds no consumer."""
    if not bands:
        return None
    return QueueStats(
        ready=sum(b.ready for b in bands),
        unacked=sum(b.unacked for b in bands),
        consumers=max(b.consumers for b in bands),
    )


class Sample(BaseModel):
    model_config = ConfigDict(frozen=True)

    at: float
    recommended: int


class History(BaseModel):
    """Recommendations seen since `since` (when this operator began watching the pool)."""

    model_config = ConfigDict(frozen=True)

    since: float
    samples: tuple[Sample, ...] = ()

    def record(self, now: float, recommended: int, keep_seconds: float) -> History:
        kept = tuple(s for s in self.samples if now - s.at <= keep_seconds)
        return self.model_copy(update={"samples": (*kept, Sample(at=now, recommended=recommended))})

    def within(self, now: float, seconds: float) -> list[int]:
        return [s.recommended for s in self.samples if now - s.at <= seconds]


class Decision(BaseModel):
    model_config = ConfigDict(frozen=True)

    desired: int
    current: int
    reason: str
    history: History
    metrics_available: bool
    fallback: bool = False
    """fallbackReplicas is in force (status.autoscaling.fallback)."""
    paused: bool = False
    """Held by a pause annotation (decisions/pausing.py), not by the queue."""

    @property
    def changed(self) -> bool:
        return self.desired != self.current


def recommend(stats: QueueStats, current: int, spec: AutoscalingSpec, per_worker: int) -> int:
    if current == 0 and stats.backlog <= spec.activation_threshold:
        raw = 0
    else:
        raw = math.ceil(stats.backlog / per_worker)
    return min(max(raw, spec.min_replicas), spec.max_replicas)


def failures_after(stats: QueueStats | None, failed_polls: int) -> int:
    """Consecutive polls without metrics, this one included: a good poll resets the count."""
    return 0 if stats is not None else failed_polls + 1


def fallback_due(spec: AutoscalingSpec, failed_polls: int) -> bool:
    return spec.fallback_replicas is not None and failed_polls >= spec.fallback_failure_threshold


def _keep_seconds(spec: AutoscalingSpec) -> float:
    return max(spec.scale_up_stabilization_seconds, spec.scale_down_stabilization_seconds)


def _hold(
    current: int,
    busy: int,
    spec: AutoscalingSpec,
    history: History,
    now: float,
    failed_polls: int,
) -> Decision:
    fallback = spec.fallback_replicas if fallback_due(spec, failed_polls) else None
    floor = max(spec.min_replicas, min(fallback, spec.max_replicas) if fallback is not None else 0)
    # Missing metrics hold the count, but never above the max: a lowered max is the user's.
    desired = max(min(current, spec.max_replicas), busy, floor)
    verb = "raising to" if desired > current else "holding"
    reason = f"metrics unavailable → {verb} {desired} workers"
    if fallback is not None:
        reason += f" (fallback after {failed_polls} failed polls)"
    return Decision(
        desired=desired,
        current=current,
        reason=reason,
        history=history.record(now, desired, _keep_seconds(spec)),
        metrics_available=False,
        fallback=fallback is not None,
    )


def _target(rec: int, current: int, spec: AutoscalingSpec, history: History, now: float) -> int:
    if rec > current:
        window = spec.scale_up_stabilization_seconds
        return max(current, min(history.within(now, window)))
    if current > spec.max_replicas:
        # Samples recorded under an older, higher max would hold the count up for a whole
        # window: the max is the user's limit, not evidence about the load, so it applies now.
        return spec.max_replicas
    if rec < current:
        window = spec.scale_down_stabilization_seconds
        if now - history.since < window:
            return current  # not watched for a whole window yet: no evidence to scale down on
        return min(current, max(history.within(now, window)))
    return current


def decide(
    stats: QueueStats | None,
    current: int,
    busy: int,
    spec: AutoscalingSpec,
    per_worker: int,
    history: History,
    now: float,
    failed_polls: int = 0,
) -> Decision:
    """`failed_polls`: consecutive polls without metrics, this one included (failures_after)."""
    if stats is None:
        return _hold(current, busy, spec, history, now, failed_polls)
    rec = recommend(stats, current, spec, per_worker)
    history = history.record(now, rec, _keep_seconds(spec))
    target = _target(rec, current, spec, history, now)
    desired = max(target, min(busy, current))
    reason = f"queue {stats.ready} ready + {stats.unacked} in flight → {desired} workers"
    if desired > target:
        reason += f" (kept: {busy} busy)"
    return Decision(
        desired=desired, current=current, reason=reason, history=history, metrics_available=True
    )
