"""What the autoscaling daemon keeps across an operator restart and a pool's deletion: the
failed-poll count seeded from status.autoscaling (a restart in an outage keeps the fallback),
polls before the broker clients are read counting as not started (not failed), the paused and
fallback gauges, and a poll in flight at deletion dropping the series it set."""

from typing import Any

from prometheus_client import REGISTRY

from ffpool_operator import metrics
from ffpool_operator.decisions import pausing
from ffpool_operator.decisions.scaling import History
from ffpool_operator.flows import autoscale_io
from ffpool_operator.flows.autoscale import (
    autoscale_once,
    pause_events,
    read_and_decide,
    restored_failed_polls,
)
from ffpool_operator.flows.autoscale_io import DeploymentSeen
from ffpool_operator.flows.runtime import Runtime
from ffpool_operator.spec.pool import PoolRef, PoolSpec

POOL = PoolRef(name="p", namespace="restart-ns", uid="u")


class NoPods:
    async def list(self, kind: str, namespace: str, selector: str) -> list[dict[str, Any]]:
        return []


def spec(**autoscaling: Any) -> PoolSpec:
    return PoolSpec.model_validate(
        {
            "image": "i",
            "rabbitmq": {"secretName": "s"},
            "storage": {"claimName": "c"},
            "auth": {"allowAnonymous": True},
            "autoscaling": {"minReplicas": 0, "maxReplicas": 10, **autoscaling},
        }
    )


def test_the_count_is_restored_from_the_status() -> None:
    said = {"autoscaling": {"failedPolls": 4, "fallback": True}}
    assert restored_failed_polls(said) == 4
    assert restored_failed_polls({}) == 0
    assert restored_failed_polls(None) == 0


async def test_the_first_poll_after_a_restart_keeps_the_fallback() -> None:
    runtime = Runtime(kube=NoPods())  # type: ignore[arg-type]
    state = runtime.state(POOL)
    said = {"autoscaling": {"failedPolls": 3, "fallback": True}}
    fallback = spec(fallbackReplicas=8, fallbackFailureThreshold=3)
    seen = DeploymentSeen(requested=8, current=8, ready=8)
    first = await read_and_decide(runtime, state, POOL, fallback, seen, said, pausing.Pause())
    assert (first.failed_polls, first.decision.fallback, first.decision.desired) == (3, True, 8)
    assert state.failed_polls == 3
    # Seeded once: later polls go on from the operator's own count, not the status.
    state.failed_polls = 0
    later = await read_and_decide(runtime, state, POOL, fallback, seen, said, pausing.Pause())
    assert (later.failed_polls, later.decision.fallback) == (0, False)


async def test_polls_before_the_broker_clients_are_not_failures() -> None:
    fallback = spec(fallbackReplicas=8, fallbackFailureThreshold=1)
    history = History(since=0.0)
    kube: Any = NoPods()
    fresh = await autoscale_io.poll(kube, None, POOL, fallback, 1, history, {}, 0)
    assert (fresh.failed_polls, fresh.decision.fallback, fresh.decision.desired) == (0, False, 1)
    # Restored from the status of an operator that was in fallback: it stays there.
    restored = await autoscale_io.poll(kube, None, POOL, fallback, 8, history, {}, 3)
    assert (restored.failed_polls, restored.decision.fallback) == (3, True)
    assert restored.decision.desired == 8


def sample(name: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"namespace": POOL.namespace, "pool": POOL.name})


def test_paused_and_fallback_gauges_and_their_removal() -> None:
    metrics.observe_autoscaling(POOL.namespace, POOL.name, paused=True, fallback=False)
    assert sample("ffpool_operator_autoscaling_paused") == 1
    assert sample("ffpool_operator_fallback_active") == 0
    metrics.observe_autoscaling(POOL.namespace, POOL.name, paused=False, fallback=True)
    assert sample("ffpool_operator_autoscaling_paused") == 0
    assert sample("ffpool_operator_fallback_active") == 1
    metrics.forget_pool(POOL.namespace, POOL.name)
    assert sample("ffpool_operator_autoscaling_paused") is None
    assert sample("ffpool_operator_fallback_active") is None


def test_forgetting_a_pool_marks_its_state_deleted() -> None:
    runtime = Runtime(kube=NoPods())  # type: ignore[arg-type]
    state = runtime.state(POOL)  # held by a poll in flight
    runtime.forget(POOL)
    assert state.deleted
    assert not runtime.state(POOL).deleted  # a pool created again under the name starts anew


class DeletedMidPoll:
    """The pool is deleted (and its series dropped) while its poll awaits the API; the poll
    then sets a gauge, as the rest of a poll would."""

    def __init__(self) -> None:
        self.runtime = Runtime(kube=self)  # type: ignore[arg-type]

    async def get(self, kind: str, namespace: str, name: str) -> None:
        self.runtime.forget(POOL)
        metrics.forget_pool(POOL.namespace, POOL.name)
        metrics.observe_autoscaling(POOL.namespace, POOL.name, paused=True, fallback=True)


async def test_a_poll_in_flight_at_deletion_leaves_no_series() -> None:
    kube = DeletedMidPoll()
    valid = spec().model_dump(by_alias=True, mode="json", exclude_none=True)
    await autoscale_once(kube.runtime, POOL, valid, {}, {"metadata": {}})
    assert sample("ffpool_operator_autoscaling_paused") is None
    assert sample("ffpool_operator_fallback_active") is None


def test_an_invalid_annotation_that_ends_a_pause_says_so() -> None:
    [warning, resumed] = pause_events(True, pausing.parse({"autoscaling.ffpool.dev/paused": "x"}))
    assert warning.reason == "InvalidPauseAnnotation"
    assert resumed.reason == "AutoscalingResumed"
    assert resumed.message == "pause annotation invalid: autoscaling resumed"
    [removed] = pause_events(True, pausing.parse({}))
    assert removed.message == "pause annotations removed: autoscaling resumed"
