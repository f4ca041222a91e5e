"""Fallback after N consecutive failed polls (KEDA's fallback.failureThreshold), pure: before
the threshold the count holds, from it the count rises to fallbackReplicas (never lowered,
never above max, never below busy), and a good poll resets the count."""

from typing import Any

import pytest

from ffpool_operator.decisions.scaling import History, QueueStats, decide, failures_after
from ffpool_operator.spec.pool import AutoscalingSpec

OLD = History(since=-1000.0)


def auto(**kw: Any) -> AutoscalingSpec:
    return AutoscalingSpec.model_validate({"minReplicas": 0, "maxReplicas": 10, **kw})


def test_the_threshold_defaults_to_three() -> None:
    assert AutoscalingSpec().fallback_failure_threshold == 3


def test_failures_count_up_and_a_good_poll_resets_them() -> None:
    counts, failed = [], 0
    for stats in (None, None, QueueStats(ready=0, unacked=0), None):
        failed = failures_after(stats, failed)
        counts.append(failed)
    assert counts == [1, 2, 0, 1]


def test_hold_before_the_threshold_then_fallback_from_it() -> None:
    spec = auto(fallbackReplicas=4, fallbackFailureThreshold=3)
    seen = [decide(None, 1, 0, spec, 1, OLD, now=0.0, failed_polls=n) for n in (1, 2, 3, 4)]
    assert [d.desired for d in seen] == [1, 1, 4, 4]
    assert [d.fallback for d in seen] == [False, False, True, True]
    assert "holding 1 workers" in seen[1].reason
    assert (
        seen[2].reason
        == "metrics unavailable → raising to 4 workers (fallback after 3 failed polls)"
    )
    assert not any(d.metrics_available for d in seen)


@pytest.mark.parametrize(
    ("current", "busy", "kw", "desired"),
    [
        (6, 0, {}, 6),  # never lowered to the fallback
        (0, 0, {"maxReplicas": 3}, 3),  # never above max
        (0, 5, {}, 5),  # never below busy
        (0, 0, {"minReplicas": 5}, 5),  # min stays a floor
    ],
)
def test_fallback_bounds(current: int, busy: int, kw: dict[str, Any], desired: int) -> None:
    spec = auto(fallbackReplicas=4, fallbackFailureThreshold=2, **kw)
    d = decide(None, current, busy, spec, 1, OLD, now=0.0, failed_polls=2)
    assert d.desired == desired, d.reason


def test_without_fallback_replicas_there_is_no_fallback() -> None:
    d = decide(None, 2, 0, auto(fallbackFailureThreshold=1), 1, OLD, now=0.0, failed_polls=9)
    assert (d.desired, d.fallback) == (2, False)


def test_metrics_back_mean_no_fallback() -> None:
    spec = auto(fallbackReplicas=4, fallbackFailureThreshold=1)
    d = decide(QueueStats(ready=2, unacked=0), 0, 0, spec, 1, OLD, now=0.0, failed_polls=0)
    assert (d.desired, d.fallback, d.metrics_available) == (2, False, True)
