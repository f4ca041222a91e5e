"""Renaming the job queue with jobs in the old one (KMock + the real operator + the real
broker): the old queue is unbound (no copy of new jobs), `TopologyReady=False` with reason
`OldQueueNotEmpty` names the count, Events say both, and the condition clears once it is
drained."""

from typing import Any

import pytest

from ffpool import names
from ffpool_operator.broker.management import segment
from tests.integration.test_operator_events import pool_events
from tests.kmock_ext import ApiServer
from tests.operator_harness.helpers import NS, Broker, condition, pool, secret
from tests.polling import eventually

pytest_plugins = ["tests.operator_harness.fixtures"]
pytestmark = [pytest.mark.rabbitmq, pytest.mark.kmock(cls=ApiServer)]
VHOST = segment("/")


def topology(kube_api: Any) -> tuple[str, str, str]:
    cond = condition(kube_api, "TopologyReady") or {}
    return cond.get("status", ""), cond.get("reason", ""), cond.get("message", "")


async def publish(broker: Broker, queue: str, count: int) -> None:
    body = {"properties": {}, "routing_key": queue, "payload": "{}", "payload_encoding": "string"}
    for _ in range(count):
        assert await broker.raw("POST", f"/exchanges/{VHOST}/amq.default/publish", body) == 200


async def test_a_renamed_queue_with_jobs_is_unbound_reported_and_cleared_when_drained(
    kube_api: Any, kube: Any, broker: Broker, operator: None
) -> None:
    old, new = broker.topology["jobQueue"], f"{broker.prefix}.jobs2"
    await kube.create(secret())
    await kube.create(pool(broker))
    await eventually(
        lambda: topology(kube_api)[0] == "True", timeout=15, what="TopologyReady condition True"
    )
    await publish(broker, old, 3)
    try:
        change = {"spec": {"topology": {"jobQueue": new}}}
        await kube.patch(names.CRD_KIND, NS, "pool", change)
        # The broker's statistics lag a few seconds behind the publishes.
        stranded = await eventually(
            lambda: topology(kube_api)[1] == "OldQueueNotEmpty",
            timeout=25,
            what="TopologyReady reason OldQueueNotEmpty",
        )
        status, _, message = topology(kube_api)
        assert status == "False"
        assert f"queue {old} (the job queue before a rename to {new}) still holds 3 jobs" in message
        assert stranded
        renamed = await eventually(
            lambda: pool_events(kube_api, "JobQueueRenamed"),
            timeout=15,
            what="JobQueueRenamed event",
        )
        assert f"{old} unbound" in renamed[0]["message"]
        assert (
            await eventually(
                lambda: pool_events(kube_api, "OldQueueNotEmpty"),
                timeout=15,
                what="OldQueueNotEmpty event",
            )
        )[0]["type"] == "Warning"
        # No copy of new jobs: the old queue keeps no binding to the job exchange.
        bindings = await broker.api.bindings("/", broker.topology["jobExchange"], old)
        assert bindings == []
        assert await broker.api.bindings("/", broker.topology["jobExchange"], new) != []
        assert await broker.raw("DELETE", f"/queues/{VHOST}/{segment(old)}/contents") == 204
        await eventually(
            lambda: topology(kube_api)[:2] == ("True", "Declared"),
            timeout=25,
            what="TopologyReady condition True (Declared)",
        )
    finally:
        await broker.raw("DELETE", f"/queues/{VHOST}/{segment(new)}")
