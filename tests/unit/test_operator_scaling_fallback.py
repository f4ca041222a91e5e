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


def _run(spec: AutoscalingSpec, good: list[bool], backlog: int, step: float = 5.0) -> list[int]:
    """The worker count poll after poll; `good[i]`: poll i read the queue (a backlog of
    `backlog` in flight), else it failed."""
    history, current, failed, counts = History(since=0.0), 1, 0, []
    for i, ok in enumerate(good):
        now = 1000.0 + step * (i + 1)
        stats = QueueStats(ready=0, unacked=backlog) if ok else None
        failed = failures_after(stats, failed)
        d = decide(stats, current, 0, spec, 1, history, now=now, failed_polls=failed)
        history, current = d.history, d.desired
        counts.append(current)
    return counts


def test_an_intermittent_outage_does_not_flap_the_fallback() -> None:
    """3 polls of 4 failing (a flaky management API): once in fallback the pool stays there,
    since each good poll finds the fallback's samples in the scale-down window."""
    spec = auto(fallbackReplicas=8, fallbackFailureThreshold=3, scaleDownStabilizationSeconds=60)
    counts = _run(spec, [i % 4 == 3 for i in range(40)], backlog=1)
    assert counts[:2] == [1, 1]
    assert counts[2:] == [8] * 38, counts


def test_after_the_outage_the_count_comes_down_through_the_window() -> None:
    spec = auto(fallbackReplicas=8, fallbackFailureThreshold=3, scaleDownStabilizationSeconds=60)
    good = [False] * 5 + [True] * 20  # polls 5 s apart: the window is 12 polls
    counts = _run(spec, good, backlog=1)
    assert counts[2:5] == [8, 8, 8]
    last_fallback = 1000.0 + 5 * 5
    down = next(i for i, c in enumerate(counts) if c == 1 and i > 2)
    assert 1000.0 + 5 * (down + 1) - last_fallback > 60  # not before a whole window
    assert counts[down:] == [1] * (len(counts) - down)
    assert set(counts[2:down]) == {8}  # no flip back and forth on the way


def test_a_hold_counts_as_a_sample_too() -> None:
    """Without a fallback, the held count is what the pool ran: it is in the window."""
    spec = auto(scaleDownStabilizationSeconds=60)
    d = decide(None, 5, 0, spec, 1, OLD, now=0.0, failed_polls=1)
    assert d.history.within(0.0, 60) == [5]
    back = decide(QueueStats(ready=0, unacked=1), 5, 0, spec, 1, d.history, now=5.0)
    assert back.desired == 5
