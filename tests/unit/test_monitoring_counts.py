"""What the alerts count (docs/monitoring.md): worker restarts as a real counter that a
scale-down never raises, a retried job's wait observed once, and a deleted pool's series gone."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from prometheus_client import REGISTRY

from ffpool.backends import job_metrics
from ffpool.domain.events import JobState
from ffpool.domain.jobs import Job, JobSpec, PathInput, TranscodeOp, utcnow
from ffpool_operator import metrics
from ffpool_operator.flows import delete
from ffpool_operator.spec.pool import PoolRef


def pod(uid: str, *restarts: int) -> dict[str, Any]:
    statuses = [{"restartCount": n} for n in restarts]
    return {"metadata": {"uid": uid}, "status": {"containerStatuses": statuses}}


def pods(**counts: int) -> list[dict[str, Any]]:
    return [pod(uid, n) for uid, n in counts.items()]


def test_the_first_poll_is_a_baseline_and_growth_counts() -> None:
    tracker = metrics.RestartTracker()
    assert tracker.update("ns", "p", metrics.pod_restarts(pods(a=5, b=2))) == 0
    assert tracker.update("ns", "p", metrics.pod_restarts(pods(a=7, b=2))) == 2
    assert tracker.update("ns", "p", metrics.pod_restarts(pods(a=7, b=3))) == 1


def test_a_scale_down_without_restarts_counts_nothing() -> None:
    """A scale-down: 10 pods with 20 restarts down to 4 (the old gauge of summed
    restartCount fell from 20 to 8, which increase() read as a reset: 8 restarts)."""
    tracker = metrics.RestartTracker()
    ten = {f"p{i}": 2 for i in range(10)}
    assert tracker.update("ns", "p", ten) == 0
    four = {f"p{i}": 2 for i in range(4)}
    assert tracker.update("ns", "p", four) == 0
    assert tracker.update("ns", "p", four) == 0


def test_restarts_during_a_scale_down_count() -> None:
    tracker = metrics.RestartTracker()
    tracker.update("ns", "p", {f"p{i}": 2 for i in range(10)})
    assert tracker.update("ns", "p", {"p0": 5, "p1": 2}) == 3


def test_a_new_pod_counts_its_restarts_and_gone_pods_are_forgotten() -> None:
    tracker = metrics.RestartTracker()
    tracker.update("ns", "p", {"a": 1})
    assert tracker.update("ns", "p", {"a": 1, "b": 2}) == 2  # b restarted since it appeared
    assert tracker.update("ns", "p", {"b": 2}) == 0
    assert tracker.update("ns", "p", {"a": 0, "b": 2}) == 0  # a forgotten uid starts afresh
    tracker.forget("ns", "p")
    assert tracker.update("ns", "p", {"a": 9}) == 0  # a baseline again
    assert tracker._seen == {("ns", "p"): {"a": 9}}  # only the current pods: bounded


def test_pods_count_every_container_and_need_a_uid() -> None:
    assert metrics.pod_restarts([pod("a", 1, 2), {"status": {}}]) == {"a": 3}


def sample(name: str, pool: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"namespace": "count-ns", "pool": pool, **labels})


def test_the_counter_only_adds() -> None:
    metrics.forget_pool("count-ns", "c")
    metrics.observe_restarts("count-ns", "c", pods(a=3, b=4))
    assert sample("ffpool_operator_worker_restarts_total", "c") == 0
    metrics.observe_restarts("count-ns", "c", pods(a=4))  # a restarted, b went
    metrics.observe_restarts("count-ns", "c", pods(a=4, c=0))  # scaled up again
    assert sample("ffpool_operator_worker_restarts_total", "c") == 1


async def test_deleting_a_pool_drops_its_series_only() -> None:
    for name in ("gone", "kept"):
        metrics.DECISIONS.labels("count-ns", name, "up").inc()
        metrics.RECONCILE_ERRORS.labels("count-ns", name, "children").inc()
        metrics.QUEUE_READY.labels("count-ns", name).set(3)
        metrics.observe_workers("count-ns", name, maximum=5, current=2, busy=1)
        metrics.observe_restarts("count-ns", name, pods(a=1))

    class Runtime:
        def forget(self, pool: PoolRef) -> None:
            return None

    gone = PoolRef(name="gone", namespace="count-ns", uid="u-gone")
    await delete.run_delete(Runtime(), gone, {}, {}, 0.0)  # type: ignore[arg-type]
    text = [
        (s.name, s.labels)
        for family in REGISTRY.collect()
        if family.name.startswith("ffpool_operator_")
        for s in family.samples
        if s.labels.get("namespace") == "count-ns"
    ]
    assert not [t for t in text if t[1]["pool"] == "gone"]
    assert sample("ffpool_operator_scaling_decisions_total", "kept", direction="up") == 1
    assert sample("ffpool_operator_queue_ready", "kept") == 3
    assert sample("ffpool_operator_worker_restarts_total", "kept") == 0
    assert sample("ffpool_operator_max_workers", "kept") == 5
    assert ("count-ns", "gone") not in metrics.RESTARTS._seen


class Waits:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def observe_submitted(self) -> None:
        return None

    def observe_started(self, operation: str, waited_s: float) -> None:
        self.waits.append(waited_s)

    def observe_finished(self, operation: str, state: JobState, seconds: float) -> None:
        return None

    def observe_completed(
        self, operation: str, media_s: float | None, seconds: float, out_bytes: int
    ) -> None:
        return None

    def observe_input(self, operation: str, in_bytes: int) -> None:
        return None


def test_only_the_first_attempt_waits() -> None:
    """A retry's time since submit includes the earlier runs: not a wait."""
    submitted = utcnow() - timedelta(minutes=10)
    job = Job(spec=JobSpec(input=PathInput(path="a.mp4"), operation=TranscodeOp()))
    job = job.model_copy(update={"created_at": submitted})
    waits = Waits()
    job_metrics.started(waits, job)
    job_metrics.started(waits, job, attempt=1)
    job_metrics.started(waits, job, attempt=2)
    assert len(waits.waits) == 2
    assert all(590 < w < 700 for w in waits.waits)
