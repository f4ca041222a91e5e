"""Autoscaling conveniences with the real operator (KMock + real broker, or a fake management
API): the pause annotations (set, change, removed: resumed at once; an invalid value said in an
Event), and the fallback that applies only after fallbackFailureThreshold failed polls in a row,
with a good poll resetting the count."""

from typing import Any

import pytest

from ffpool import names
from tests.kmock_ext import ApiServer
from tests.operator_harness import fake_mgmt
from tests.operator_harness.fake_mgmt import Answer
from tests.operator_harness.helpers import (
    NS,
    Broker,
    condition,
    pool,
    replicas,
    secret,
    status_when,
)
from tests.polling import eventually

pytest_plugins = ["tests.operator_harness.fixtures"]
pytestmark = [pytest.mark.rabbitmq, pytest.mark.kmock(cls=ApiServer)]
QUEUE_OK = '{"name": "q", "messages_ready": 0, "messages_unacknowledged": 0, "consumers": 0}'


def autoscaling(kmock: Any) -> dict[str, Any] | None:
    status = status_when(kmock, lambda s: "autoscaling" in s)
    return None if status is None else dict(status["autoscaling"])


def events(kmock: Any, reason: str) -> list[dict[str, Any]]:
    found = [e for (r, _, _), e in kmock.objects.items() if r.plural == "events"]
    return [dict(e) for e in found if e.get("reason") == reason]


async def annotate(kube: Any, annotations: dict[str, str | None]) -> None:
    await kube.patch(names.CRD_KIND, NS, "pool", {"metadata": {"annotations": annotations}})


async def test_pause_annotations_hold_set_and_resume_at_once(
    kube_api: Any, kube: Any, broker: Broker, operator: None
) -> None:
    await kube.create(secret())
    # No scale-down window: resuming may go straight back to what the empty queue asks.
    await kube.create(pool(broker, autoscaling={"scaleDownStabilizationSeconds": 0}))
    said = await eventually(lambda: autoscaling(kube_api), timeout=15, what="status.autoscaling")
    assert (said["paused"], said["fallback"]) == (False, False)
    assert replicas(kube_api) == 0
    # Polls 20 s apart from now on: only an annotation change makes the daemon act in seconds.
    slow = {"spec": {"autoscaling": {"pollingIntervalSeconds": 20}}}
    await kube.patch(names.CRD_KIND, NS, "pool", slow)

    await annotate(kube, {names.ANNOTATION_PAUSED_REPLICAS: "3"})
    await eventually(lambda: replicas(kube_api) == 3, timeout=8, what="paused-replicas 3")
    said = await eventually(
        lambda: status_when(kube_api, lambda s: s["autoscaling"]["paused"]),
        timeout=8,
        what="status.autoscaling.paused",
    )
    assert said["autoscaling"]["pausedReplicas"] == 3
    scaling = condition(kube_api, "Scaling") or {}
    assert scaling.get("reason") == "PausedByAnnotation"
    assert "paused by annotation" in said["lastScaleReason"]
    await eventually(
        lambda: events(kube_api, "AutoscalingPaused"), timeout=8, what="AutoscalingPaused event"
    )

    # Removing it resumes at once: the empty queue takes the workers back to 0.
    await annotate(kube, {names.ANNOTATION_PAUSED_REPLICAS: None})
    await eventually(lambda: replicas(kube_api) == 0, timeout=8, what="resumed: 0 workers")
    await eventually(
        lambda: status_when(kube_api, lambda s: not s["autoscaling"]["paused"]),
        timeout=8,
        what="status.autoscaling.paused false",
    )
    await eventually(
        lambda: events(kube_api, "AutoscalingResumed"), timeout=8, what="AutoscalingResumed event"
    )

    # An invalid value is ignored (autoscaling goes on) and said in a Warning Event.
    await annotate(kube, {names.ANNOTATION_PAUSED: "yes"})
    [warning] = await eventually(
        lambda: events(kube_api, "InvalidPauseAnnotation"),
        timeout=8,
        what="InvalidPauseAnnotation event",
    )
    assert warning["type"] == "Warning"
    assert '"yes" is neither "true" nor "false"' in warning["message"]
    assert (autoscaling(kube_api) or {}).get("paused") is False


def failed_polls_are(kmock: Any, count: int) -> dict[str, Any] | None:
    return status_when(kmock, lambda s: s["autoscaling"]["failedPolls"] == count)


async def test_fallback_after_n_failed_polls_and_a_good_poll_resets(
    kube_api: Any, kube: Any, broker: Broker, operator: None
) -> None:
    answer = Answer(503, "")
    async with fake_mgmt.serve(answer) as url:
        await kube.create(secret(mgmt_url=url))
        spec = {"pollingIntervalSeconds": 1, "fallbackReplicas": 2, "fallbackFailureThreshold": 3}
        await kube.create(pool(broker, autoscaling=spec))
        # Two failed polls: held (at min, 0), the fallback not yet in force.
        second = await eventually(
            lambda: failed_polls_are(kube_api, 2), timeout=15, what="failedPolls == 2"
        )
        assert second["autoscaling"]["fallback"] is False
        assert replicas(kube_api) == 0
        # The third: raised to fallbackReplicas (the count is written before the status).
        third = await eventually(
            lambda: status_when(kube_api, lambda s: s["autoscaling"]["failedPolls"] >= 3),
            timeout=8,
            what="failedPolls >= 3",
        )
        assert third["autoscaling"]["fallback"] is True
        assert replicas(kube_api) == 2
        assert "fallback after 3 failed polls" in third["lastScaleReason"]

        # The management API answers again: the count resets, the fallback ends.
        answer.status, answer.body = 200, QUEUE_OK
        back = await eventually(
            lambda: failed_polls_are(kube_api, 0), timeout=8, what="failedPolls reset to 0"
        )
        assert back["autoscaling"]["fallback"] is False
        assert (condition(kube_api, "MetricsAvailable") or {}).get("status") == "True"

        # A new outage counts from one again: held, not straight back to the fallback.
        answer.status, answer.body = 503, ""
        again = await eventually(
            lambda: failed_polls_are(kube_api, 1), timeout=8, what="failedPolls == 1 again"
        )
        assert again["autoscaling"]["fallback"] is False
