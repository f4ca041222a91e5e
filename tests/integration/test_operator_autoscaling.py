"""Queue-depth autoscaling by the real operator (KMock + real broker): scale up on a burst,
back to min after the window, busy-aware scale-down, and holding on missing metrics."""

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest

from ffpool import names
from tests.kmock_ext import ApiServer
from tests.operator_harness.helpers import (
    AMQP_URL,
    NS,
    Broker,
    condition,
    obj,
    pool,
    replicas,
    secret,
    status_when,
)
from tests.polling import eventually

pytest_plugins = ["tests.operator_harness.fixtures"]
pytestmark = [pytest.mark.rabbitmq, pytest.mark.kmock(cls=ApiServer)]


@pytest.fixture
async def amqp() -> AsyncIterator[Any]:
    conn = await aio_pika.connect(AMQP_URL, client_properties={"connection_name": "test"})
    yield conn
    await conn.close()


async def publish(conn: Any, broker: Broker, count: int) -> None:
    channel = await conn.channel()
    exchange = await channel.get_exchange(broker.topology["jobExchange"])
    for i in range(count):
        body = json.dumps({"job": i}).encode()
        await exchange.publish(aio_pika.Message(body), routing_key=broker.topology["routingKey"])
    await channel.close()


async def test_burst_scales_up_then_back_to_min(
    kube_api: Any, kube: Any, broker: Broker, operator: None, amqp: Any
) -> None:
    await kube.create(secret())
    await kube.create(pool(broker, workers={"jobsPerWorker": 4}, autoscaling={"maxReplicas": 20}))
    await eventually(
        lambda: (condition(kube_api, "TopologyReady") or {}).get("status") == "True",
        timeout=15,
        what="TopologyReady condition True",
    )
    assert replicas(kube_api) == 0

    await publish(amqp, broker, 40)
    await eventually(
        lambda: replicas(kube_api) == 10, timeout=10, what="10 worker replicas"
    )  # ceil(40 / 4)
    status = await eventually(
        lambda: status_when(kube_api, lambda s: s["workers"]["desired"] == 10),
        timeout=15,
        what="status workers.desired == 10",
    )
    # A poll may land mid-publish: any depth that asks for 10 workers (37 to 40) is the decision.
    reason = re.fullmatch(
        r"queue (\d+) ready \+ 0 in flight → 10 workers", status["lastScaleReason"]
    )
    assert reason is not None, status["lastScaleReason"]
    assert 37 <= int(reason.group(1)) <= 40, status["lastScaleReason"]

    def scaled_event() -> bool:
        events = [e for (r, _, _), e in kube_api.objects.items() if r.plural == "events"]
        return any(e.get("reason") == "Scaled" and "→ 10 workers" in e["message"] for e in events)

    await eventually(scaled_event, timeout=15, what="scaled event")

    await broker.raw("DELETE", f"/queues/%2F/{broker.topology['jobQueue']}/contents")
    await eventually(
        lambda: replicas(kube_api) == 0, timeout=15, what="0 worker replicas"
    )  # window 2 s + stats lag


async def test_management_api_down_holds_replicas(
    kube_api: Any, kube: Any, broker: Broker, operator: None
) -> None:
    await kube.create(secret(mgmt_url="http://127.0.0.1:9"))  # a closed port
    await kube.create(pool(broker, autoscaling={"fallbackReplicas": 2}))
    metrics = await eventually(
        lambda: condition(kube_api, "MetricsAvailable"),
        timeout=15,
        what="MetricsAvailable condition set",
    )
    assert metrics["status"] == "False"
    assert "metrics unavailable" in metrics["message"]
    await eventually(
        lambda: replicas(kube_api) == 2, timeout=15, what="2 worker replicas"
    )  # raised to the fallback
    ready = await eventually(
        lambda: condition(kube_api, "TopologyReady"), timeout=15, what="TopologyReady condition set"
    )
    assert ready["status"] == "Unknown"
    # Someone scaled it by hand to 5: missing metrics never scale down.
    await kube.patch("Deployment", NS, "pool-worker", {"spec": {"replicas": 5}})

    def version() -> int:
        return int(obj(kube_api, names.CRD_PLURAL, "pool")["metadata"]["resourceVersion"])

    seen = version()
    await eventually(
        lambda: version() >= seen + 5, timeout=15, what="version() >= seen + 5"
    )  # each poll writes status: 5 polls later...
    assert replicas(kube_api) == 5


async def test_current_workers_are_the_deployments_pods(
    kube_api: Any, kube: Any, broker: Broker, operator: None
) -> None:
    """`status.workers.current` (the Workers column, the scale subresource's status) is the
    worker Deployment's `status.replicas`, not the desired count. KMock runs
    no controllers, so the test writes the Deployment's status as one would."""
    await kube.create(secret())
    await kube.create(pool(broker, autoscaling={"enabled": False}, workers={"replicas": 3}))
    status = await eventually(
        lambda: status_when(kube_api, lambda s: s["workers"]["desired"] == 3),
        timeout=15,
        what="status workers.desired == 3",
    )
    assert (status["workers"]["current"], status["workers"]["ready"]) == (0, 0)
    seen = {"status": {"replicas": 2, "readyReplicas": 1}}
    await kube.patch("Deployment", NS, "pool-worker", seen, sub="status")
    status = await eventually(
        lambda: status_when(kube_api, lambda s: s["workers"]["current"] == 2),
        timeout=15,
        what="status workers.current == 2",
    )
    assert (status["workers"]["desired"], status["workers"]["ready"]) == (3, 1)
