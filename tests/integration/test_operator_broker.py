"""Topology against the real broker through the real operator: conflicting queue arguments,
drift repair, deletion policy, and busy-aware scale-down from named worker connections."""

from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import pytest

from ffpool import names
from ffpool.topology import Topology
from tests.kmock_ext import ApiServer
from tests.operator_harness.helpers import (
    AMQP_URL,
    NS,
    Broker,
    condition,
    eventually,
    obj,
    pool,
    replicas,
    secret,
    status_when,
)  # fmt: skip

pytest_plugins = ["tests.operator_harness.fixtures"]
pytestmark = [pytest.mark.rabbitmq, pytest.mark.kmock(cls=ApiServer)]


async def publish(broker: Broker, count: int) -> None:
    conn = await aio_pika.connect(AMQP_URL)
    async with conn:
        channel = await conn.channel()
        exchange = await channel.get_exchange(broker.topology["jobExchange"])
        for _ in range(count):
            await exchange.publish(
                aio_pika.Message(b"{}"), routing_key=broker.topology["routingKey"]
            )


async def test_conflicting_queue_arguments_set_a_condition_not_a_crash(
    kube_api: Any, kube: Any, broker: Broker, operator: None
) -> None:
    args = {**Topology().queue_arguments(), "x-max-priority": 5}
    await broker.api.declare_queue("/", broker.topology["jobQueue"], args)
    await kube.create(secret())
    await kube.create(pool(broker))
    topo = await eventually(lambda: condition(kube_api, "TopologyReady"))
    assert topo["status"] == "False"
    assert topo["reason"] == "QueueArgumentsDiffer"
    assert "x-max-priority: queue has 5, spec wants 9" in topo["message"]
    # The workloads are still there, the pool is otherwise healthy, the queue untouched.
    assert (await eventually(lambda: condition(kube_api, "Ready")))["status"] == "True"
    assert obj(kube_api, "deployments", "pool-worker") is not None
    queue = await broker.api.queue("/", broker.topology["jobQueue"])
    assert queue is not None
    assert queue.arguments["x-max-priority"] == 5


async def test_queue_deleted_in_broker_is_recreated(
    kube_api: Any, kube: Any, broker: Broker, operator: None
) -> None:
    await kube.create(secret())
    await kube.create(pool(broker))
    await eventually(lambda: (condition(kube_api, "TopologyReady") or {}).get("status") == "True")
    status = await broker.raw("DELETE", f"/queues/%2F/{broker.topology['jobQueue']}")
    assert status == 204
    assert await broker.api.queue("/", broker.topology["jobQueue"]) is None
    queue = await eventually(lambda: broker.api.queue("/", broker.topology["jobQueue"]), 10)
    assert queue.arguments == Topology().queue_arguments() | {
        "x-dead-letter-exchange": broker.topology["jobExchange"],
        "x-dead-letter-routing-key": broker.topology["dlqQueue"],
    }


async def test_delete_if_empty_keeps_a_queue_holding_jobs(
    kube_api: Any, kube: Any, broker: Broker, operator: None
) -> None:
    await kube.create(secret())
    await kube.create(pool(broker, topology={"deletionPolicy": "DeleteIfEmpty"}))
    await eventually(lambda: (condition(kube_api, "TopologyReady") or {}).get("status") == "True")
    await publish(broker, 1)
    await kube.delete(names.CRD_KIND, NS, "pool")
    await eventually(lambda: obj(kube_api, names.CRD_PLURAL, "pool") is None)
    assert await broker.api.queue("/", broker.topology["jobQueue"]) is not None  # holds a job
    assert await broker.api.queue("/", broker.topology["dlqQueue"]) is None  # was empty

    def warned() -> bool:
        events = [e for (r, _, _), e in kube_api.objects.items() if r.plural == "events"]
        return any(e.get("reason") == "QueuesKept" and e.get("type") == "Warning" for e in events)

    await eventually(warned)


@pytest.fixture
async def busy_workers(broker: Broker) -> AsyncIterator[list[Any]]:
    """Two worker processes' connections (named after pods w-a, w-b), each holding one job."""
    conns = []
    for pod in ("w-a", "w-b"):
        name = names.WORKER_CONNECTION_PREFIX + pod
        conn = await aio_pika.connect(AMQP_URL, client_properties={"connection_name": name})
        conns.append(conn)
    yield conns
    for conn in conns:
        await conn.close()


async def _hold_one_job(conn: Any, queue_name: str) -> None:
    channel = await conn.channel()
    await channel.set_qos(prefetch_count=1)
    queue = await channel.get_queue(queue_name)

    async def hold(message: Any) -> None:  # never acked: the job stays in flight
        return None

    await queue.consume(hold)


async def test_scale_down_spares_busy_pods(
    kube_api: Any, kube: Any, broker: Broker, operator: None, busy_workers: list[Any]
) -> None:
    await kube.create(secret())
    await kube.create(pool(broker, workers={"jobsPerWorker": 4}, autoscaling={"minReplicas": 0}))
    await eventually(lambda: (condition(kube_api, "TopologyReady") or {}).get("status") == "True")
    await publish(broker, 2)
    for conn in busy_workers:
        await _hold_one_job(conn, broker.topology["jobQueue"])

    async def api_sees_busy() -> bool:  # the management API's channel stats lag a few seconds
        conns = {
            c.name
            for c in await broker.api.connections("/")
            if (c.user_provided_name or "").startswith(names.WORKER_CONNECTION_PREFIX + "w-")
        }
        channels = [c for c in await broker.api.channels("/") if c.connection_name in conns]
        return sum(c.unacked for c in channels) >= 2

    await eventually(api_sees_busy, timeout=20)
    labels = {names.LABEL_POOL: "pool", names.LABEL_COMPONENT: names.COMPONENT_WORKER}
    for pod in ("w-a", "w-b", "w-c", "w-d"):
        meta = {"name": pod, "namespace": NS, "labels": labels}
        await kube.create({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {}})
    await kube.patch("Deployment", NS, "pool-worker", {"spec": {"replicas": 4}})

    # Backlog 2 at 4 per worker wants 1, but 2 pods are busy: 2 stay, the idle ones go first.
    await eventually(lambda: replicas(kube_api) == 2, timeout=10)
    costs = {
        p: obj(kube_api, "pods", p)["metadata"]["annotations"][names.ANNOTATION_DELETION_COST]
        for p in ("w-a", "w-b", "w-c", "w-d")
    }
    assert costs == {"w-a": "1000", "w-b": "1000", "w-c": "-1000", "w-d": "-1000"}
    status = await eventually(lambda: status_when(kube_api, lambda s: s["workers"]["busy"] == 2))
    assert "(kept: 2 busy)" in status["lastScaleReason"]
