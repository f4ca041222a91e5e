"""Spec changes take effect at the next poll (KMock + real broker): a fixed invalid spec wakes
the sleeping daemon, and a lowered maxReplicas is not held up by the scale-down window."""

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
    pool,
    replicas,
    secret,
    status_when,
)
from tests.polling import eventually

pytest_plugins = ["tests.operator_harness.fixtures"]
pytestmark = [pytest.mark.rabbitmq, pytest.mark.kmock(cls=ApiServer)]


async def test_a_fixed_invalid_spec_resumes_scaling_at_once(
    kube_api: Any, kube: Any, broker: Broker, operator: None
) -> None:
    await kube.create(secret())
    await kube.create(pool(broker, autoscaling={"minReplicas": 3, "maxReplicas": 1}))
    invalid = await eventually(
        lambda: condition(kube_api, "Ready"), timeout=15, what="Ready condition set"
    )
    assert invalid["reason"] == "InvalidSpec"
    fix = {"spec": {"autoscaling": {"minReplicas": 1, "maxReplicas": 2}}}
    await kube.patch(names.CRD_KIND, NS, "pool", fix)
    # The daemon slept 30 s on the invalid spec; the change must wake it well before that.
    await eventually(
        lambda: status_when(kube_api, lambda s: s["workers"]["desired"] == 1),
        timeout=8,
        what="status workers.desired == 1",
    )
    assert (condition(kube_api, "MetricsAvailable") or {}).get("status") == "True"


async def test_a_lowered_max_applies_within_a_poll(
    kube_api: Any, kube: Any, broker: Broker, operator: None
) -> None:
    await kube.create(secret())
    scaling = {"maxReplicas": 6, "scaleDownStabilizationSeconds": 60}
    await kube.create(pool(broker, autoscaling=scaling))
    await eventually(
        lambda: (condition(kube_api, "TopologyReady") or {}).get("status") == "True",
        timeout=15,
        what="TopologyReady condition True",
    )
    conn = await aio_pika.connect(AMQP_URL)
    async with conn:
        channel = await conn.channel()
        exchange = await channel.get_exchange(broker.topology["jobExchange"])
        for _ in range(6):
            await exchange.publish(
                aio_pika.Message(b"{}"), routing_key=broker.topology["routingKey"]
            )
    await eventually(lambda: replicas(kube_api) == 6, timeout=15, what="6 worker replicas")
    await kube.patch(names.CRD_KIND, NS, "pool", {"spec": {"autoscaling": {"maxReplicas": 2}}})
    # Well within the 60 s window: the samples recorded under max 6 no longer count.
    await eventually(lambda: replicas(kube_api) == 2, timeout=5, what="2 worker replicas")
