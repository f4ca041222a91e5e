"""The autoscaling benchmark's pure parts: the ReplicaSet stand-in's victim choice and pod env
(bench/replicaset.py), the KEDA + HPA baseline policy (bench/keda.py) and the job ledger."""

import base64

import pytest

from bench import keda
from bench.ledger import Ledger
from bench.replicaset import (
    Container,
    PodView,
    container_env,
    deletion_cost,
    secret_data,
    victims,
    worker_seconds,
)
from ffpool import names
from ffpool.domain.events import CompletedEvent, JobState, StateEvent

A, B = "a" * 32, "b" * 32


def pods(*specs: tuple[str, int, bool, int]) -> list[PodView]:
    return [PodView(name=n, seq=s, ready=r, deletion_cost=c) for n, s, r, c in specs]


def test_victims_are_newest_without_costs() -> None:
    ps = pods(("old", 1, True, 0), ("mid", 2, True, 0), ("new", 3, True, 0))
    assert victims(ps, 2) == ["new", "mid"]


def test_victims_lowest_cost_first_then_not_ready_before_all() -> None:
    ps = pods(
        ("busy-new", 4, True, 1000),
        ("idle-old", 1, True, -1000),
        ("plain", 2, True, 0),
        ("starting", 3, False, 5000),
    )
    assert victims(ps, 3) == ["starting", "idle-old", "plain"]
    assert victims(ps, 0) == []
    assert victims(ps, -1) == []


@pytest.mark.parametrize(
    ("annotations", "cost"),
    [
        (None, 0),
        ({}, 0),
        ({names.ANNOTATION_DELETION_COST: "-1000"}, -1000),
        ({names.ANNOTATION_DELETION_COST: "lots"}, 0),
    ],
)
def test_deletion_cost_annotation(annotations: dict[str, str] | None, cost: int) -> None:
    assert deletion_cost(annotations) == cost


def test_container_env_resolves_like_the_kubelet() -> None:
    container = Container.model_validate(
        {
            "name": "worker",
            "envFrom": [{"configMapRef": {"name": "cm"}}],
            "env": [
                {"name": "RABBITMQ_URL", "valueFrom": {"secretKeyRef": {"name": "s", "key": "u"}}},
                {
                    "name": "INSTANCE_NAME",
                    "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
                },
                {"name": "JOB_QUEUE", "value": "explicit"},
            ],
        }
    )
    secrets = {"s": secret_data({"data": {"u": base64.b64encode(b"amqp://x/").decode()}})}
    env = container_env(container, {"cm": {"JOB_QUEUE": "from-cm", "A": "1"}}, secrets, "pod-1")
    assert env == {
        "JOB_QUEUE": "explicit",
        "A": "1",
        "RABBITMQ_URL": "amqp://x/",
        "INSTANCE_NAME": "pod-1",
    }
    bad = Container.model_validate(
        {"name": "w", "env": [{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.x"}}}]}
    )
    with pytest.raises(ValueError, match="unsupported fieldRef"):
        container_env(bad, {}, {}, "pod-1")


def test_worker_seconds_cut_at_the_end() -> None:
    assert worker_seconds([(0.0, 10.0), (5.0, None), (30.0, 40.0)], end=20.0) == 25.0


SPEC = keda.KedaSpec(target=1, max_replicas=4)


def test_keda_activates_then_hpa_scales_with_rate_limit() -> None:
    state = keda.hpa_sync(SPEC, keda.KedaState(), 10, now=0)
    assert state.replicas == 0  # the HPA does nothing at zero
    state = keda.keda_poll(SPEC, state, 10, now=1)
    assert (state.replicas, state.last_active) == (1, 1)
    state = keda.hpa_sync(SPEC, state, 10, now=2)
    assert state.replicas == 4  # ceil(10/1) = 10, clamped to max 4 (rate limit 1+4 = 5)
    wide = keda.KedaSpec(target=1, max_replicas=100)
    assert keda.hpa_sync(wide, keda.KedaState(replicas=2), 50, now=0).replicas == 6


def test_hpa_tolerance_and_scale_down_window() -> None:
    twenty = keda.KedaSpec(target=20)
    assert keda.hpa_recommend(twenty, current=1, metric=19) == 1  # within 10 %: no change
    state = keda.KedaState(replicas=4, recommendations=((0.0, 4),))
    assert keda.hpa_sync(SPEC, state, 0, now=299).replicas == 4  # 4 was seen < 300 s ago
    assert keda.hpa_sync(SPEC, state, 0, now=300).replicas == 1  # HPA min is 1


def test_keda_tail_projection_to_zero() -> None:
    state = keda.KedaState(replicas=4, last_active=0.0, recommendations=((0.0, 4),))
    steps = keda.project(SPEC, state, start=10.0, next_poll=30.0, next_sync=15.0)
    # HPA drops to 1 at its first sync >= 300 s after the last 4; KEDA to 0 at its first poll
    # >= 300 s after the metric was last active (both at 300 here; the HPA's sync goes first).
    assert steps == [(10.0, 4), (300.0, 1), (300.0, 0)]
    assert keda.area(steps) == 4 * 290.0


def test_ledger_counts_restarts_and_hand_backs_only() -> None:
    ledger = Ledger(expected={A, B})
    running = StateEvent(job_id=A, state=JobState.RUNNING, operation="transcode", worker="w1/0")
    ledger.ingest(running, at=1.0)
    ledger.ingest(StateEvent(job_id=A, state=JobState.QUEUED, operation="transcode"), at=2.0)
    ledger.ingest(running, at=3.0)
    ledger.ingest(CompletedEvent(job_id=A, processing_time_s=1.0), at=4.0)
    ledger.ingest(StateEvent(job_id=B, state=JobState.RUNNING, operation="x"), at=1.0)
    ledger.ingest(CompletedEvent(job_id="c" * 32, processing_time_s=1.0), at=9.0)  # not ours
    assert ledger.interrupted == [A]
    assert (ledger.finished, ledger.done, ledger.last_finished) == (1, False, 4.0)
    ledger.ingest(CompletedEvent(job_id=B, processing_time_s=1.0), at=5.0)
    assert (ledger.done, ledger.interrupted, ledger.failed) == (True, [A], 0)
