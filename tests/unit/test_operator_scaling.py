from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ffpool_operator.decisions.scaling import (
    History,
    QueueStats,
    decide,
    failures_after,
    fallback_due,
)
from ffpool_operator.flows import autoscale_io
from ffpool_operator.spec.pool import AutoscalingSpec
from tests.operator_harness import samples

WINDOW = 60.0


def auto(**kw: Any) -> AutoscalingSpec:
    base: dict[str, Any] = {
        "minReplicas": 0,
        "maxReplicas": 20,
        "scaleDownStabilizationSeconds": WINDOW,
    }
    return AutoscalingSpec.model_validate({**base, **kw})


def q(ready: int, unacked: int = 0) -> QueueStats:
    return QueueStats(ready=ready, unacked=unacked)


OLD = History(since=-1000.0)  # watched long enough for any window


@pytest.mark.parametrize(
    ("stats", "current", "busy", "kw", "per", "desired"),
    [
        (q(37, 4), 2, 0, {}, 4, 11),  # ceil(41 / 4) at once
        (q(40), 0, 0, {}, 1, 20),  # clamped to max
        (q(0), 0, 0, {"minReplicas": 2}, 1, 2),  # raised to min
        (q(3), 0, 0, {"activationThreshold": 5}, 1, 0),  # not activated from zero
        (q(6), 0, 0, {"activationThreshold": 5}, 1, 6),
        (q(3), 1, 0, {"activationThreshold": 5}, 1, 3),  # activation only matters at zero
        (q(0, 2), 4, 0, {}, 1, 4),  # in flight counts: window not yet passed → hold
        (None, 5, 0, {}, 1, 5),  # no metrics: hold
        (None, 0, 0, {"fallbackReplicas": 3}, 1, 3),  # no metrics 3 polls: raise to fallback
        (None, 6, 0, {"fallbackReplicas": 3}, 1, 6),  # ...but never lower
        # min is a floor even without metrics (the reconcile no longer raises the count to min)
        (None, 0, 0, {"minReplicas": 2}, 1, 2),
    ],
)
def test_decision_table(
    stats: QueueStats | None, current: int, busy: int, kw: dict[str, Any], per: int, desired: int
) -> None:
    failed = 0 if stats is not None else 3  # the default fallbackFailureThreshold
    d = decide(
        stats, current, busy, auto(**kw), per, History(since=0.0), now=1.0, failed_polls=failed
    )
    assert d.desired == desired, d.reason
    assert d.metrics_available is (stats is not None)


def test_manual_scale_is_the_users_number_even_below_busy() -> None:
    s = samples.spec(autoscaling={"enabled": False}, workers={"replicas": 1})
    d = autoscale_io.pinned_decision(s, current=4, history=OLD, stats=q(0))
    assert (d.desired, d.changed, d.reason) == (1, True, "autoscaling off → 1 workers")
    assert d.metrics_available


def test_manual_scale_does_not_claim_metrics_it_could_not_read() -> None:
    s = samples.spec(autoscaling={"enabled": False}, workers={"replicas": 3})
    d = autoscale_io.pinned_decision(s, current=3, history=OLD, stats=None)
    assert (d.desired, d.changed, d.metrics_available) == (3, False, False)
    assert "metrics unavailable" in d.reason


def test_reason_text() -> None:
    d = decide(q(37, 4), 2, 0, auto(), 4, OLD, now=0.0)
    assert d.reason == "queue 37 ready + 4 in flight → 11 workers"
    assert "metrics unavailable" in decide(None, 2, 0, auto(), 4, OLD, now=0.0).reason


def test_scale_down_waits_a_whole_window_then_goes_to_zero() -> None:
    spec = auto()
    h = History(since=0.0)
    d = decide(q(10), 10, 0, spec, 1, h, now=0.0)
    assert d.desired == 10
    for t in range(5, 60, 5):
        d = decide(q(0), 10, 0, spec, 1, d.history, now=float(t))
        assert d.desired == 10, t  # a 10-recommendation is still inside the window
    d = decide(q(0), 10, 0, spec, 1, d.history, now=61.0)
    assert d.desired == 0


def test_never_below_busy_workers() -> None:
    d = decide(q(0), 6, 4, auto(), 1, OLD, now=0.0)
    assert d.desired == 4
    assert "4 busy" in d.reason
    assert decide(None, 6, 4, auto(), 1, OLD, now=0.0).desired == 6


def test_a_lowered_max_applies_at_the_next_poll() -> None:
    """Samples recorded under the old max must not hold the count up for a window."""
    h = decide(q(10), 10, 0, auto(maxReplicas=10), 1, History(since=0.0), now=0.0).history
    lowered = auto(maxReplicas=4)
    assert decide(q(10), 10, 0, lowered, 1, h, now=5.0).desired == 4
    assert decide(q(10), 10, 6, lowered, 1, h, now=5.0).desired == 6  # busy pods kept
    assert decide(None, 10, 0, lowered, 1, h, now=5.0).desired == 4  # also without metrics
    assert decide(None, 10, 10, lowered, 1, h, now=5.0).desired == 10  # ...but not busy ones
    # Then it stays at the new max: the old samples no longer lift it.
    d = decide(q(10), 4, 0, lowered, 1, h, now=10.0)
    assert (d.desired, d.changed) == (4, False)


def test_restarted_operator_does_not_scale_down_before_a_window() -> None:
    fresh = History(since=100.0)
    assert decide(q(0), 5, 0, auto(), 1, fresh, now=110.0).desired == 5


stats_st = st.one_of(st.none(), st.builds(q, st.integers(0, 500), st.integers(0, 50)))
spec_st = st.builds(
    lambda lo, span, act, down, up, fb, threshold: auto(
        minReplicas=lo,
        maxReplicas=lo + span,
        activationThreshold=act,
        scaleDownStabilizationSeconds=down,
        scaleUpStabilizationSeconds=up,
        fallbackReplicas=fb,
        fallbackFailureThreshold=threshold,
    ),
    st.integers(0, 5),
    st.integers(1, 30),
    st.integers(0, 10),
    st.sampled_from([0.0, 15.0, 60.0]),
    st.sampled_from([0.0, 10.0]),
    st.one_of(st.none(), st.integers(0, 40)),
    st.integers(1, 4),
)


@settings(max_examples=200, deadline=None)
@given(spec_st, st.lists(stats_st, min_size=1, max_size=30), st.integers(0, 30), st.integers(1, 8))
def test_properties_over_runs(
    spec: AutoscalingSpec, series: list[QueueStats | None], start: int, per: int
) -> None:
    current, history, failed = start, History(since=0.0), 0
    for i, stats in enumerate(series):
        now = i * 5.0
        busy = min(current, (stats.unacked if stats else current))
        failed = failures_after(stats, failed)
        d = decide(stats, current, busy, spec, per, history, now, failed_polls=failed)
        assert d.desired >= min(busy, current)  # never below busy
        assert d.fallback is (stats is None and fallback_due(spec, failed))
        if stats is None and not d.fallback:
            # Before the threshold, missing metrics never raise the count (min aside).
            assert d.desired <= max(current, spec.min_replicas, busy)
        if stats is None:
            # Never scale down on missing metrics, except to a max lowered below the count.
            assert d.desired >= min(current, max(spec.max_replicas, busy))
        elif d.desired > current or d.desired < current:
            # A changed count from metrics stays within bounds (unless kept for busy pods).
            assert d.desired <= max(spec.max_replicas, current) or d.desired == busy
            assert d.desired >= min(spec.min_replicas, d.desired)
        if d.desired < current and current <= spec.max_replicas:
            # No flapping: a scale-down follows a whole window of recommendations ≤ desired.
            assert now - history.since >= spec.scale_down_stabilization_seconds
            assert max(d.history.within(now, spec.scale_down_stabilization_seconds)) <= max(
                d.desired, busy
            )
        current, history = d.desired, d.history


@settings(max_examples=200, deadline=None)
@given(spec_st, st.integers(0, 300), st.integers(0, 300), st.integers(0, 30), st.integers(1, 8))
def test_monotone_in_backlog(spec: AutoscalingSpec, a: int, b: int, current: int, per: int) -> None:
    lo, hi = sorted((a, b))
    h = History(since=-1000.0)
    d_lo = decide(q(lo), current, 0, spec, per, h, now=0.0).desired
    d_hi = decide(q(hi), current, 0, spec, per, h, now=0.0).desired
    assert d_lo <= d_hi
    assert spec.min_replicas <= d_hi or d_hi == current
    assert d_hi <= max(spec.max_replicas, current)
