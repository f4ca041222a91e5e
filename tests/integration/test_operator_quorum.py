"""Quorum mode through the real operator against the real broker's management API (one node:
quorum queues work there too): band queues declared as quorum queues, their leader and members
in status, the backlog over every band, and a classic queue never switched in place
(docs/operator.md, "Quorum queues")."""

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
    secret,
    status_when,
)
from tests.polling import eventually

pytest_plugins = ["tests.operator_harness.fixtures"]
pytestmark = [pytest.mark.rabbitmq, pytest.mark.kmock(cls=ApiServer)]
QUORUM = {"queueType": "quorum", "priorityBands": 3}


def bands(broker: Broker) -> list[str]:
    q = broker.topology["jobQueue"]
    return [f"{q}{names.BAND_SUFFIX}7", f"{q}{names.BAND_SUFFIX}4", q]


def queues_status(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {q["name"]: dict(q) for q in status["topology"]["queues"]}


async def test_quorum_pool_declares_band_queues_and_reports_their_members(
    kube_api: Any, kube: Any, broker: Broker, operator: None
) -> None:
    await kube.create(secret())
    await kube.create(pool(broker, topology=QUORUM))
    status = await eventually(
        lambda: status_when(kube_api, lambda s: len(s["topology"]["queues"]) == 4),
        timeout=20,
        what="status.topology.queues of four queues",
    )
    shown = queues_status(status)
    for name in [*bands(broker), broker.topology["dlqQueue"]]:
        info = await broker.api.queue("/", name)
        assert info is not None, name
        assert info.type == "quorum", name
        assert shown[name]["type"] == "quorum"
        assert shown[name]["leader"] == info.leader
        assert (shown[name]["membersOnline"], shown[name]["membersExpected"]) == (1, 1)

    async def policy_applied() -> bool:
        # Shown once the broker's statistics catch up (collect_statistics_interval).
        top = await broker.api.queue("/", bands(broker)[0])
        return top is not None and top.policy == f"ffpool.{NS}.pool"

    await eventually(policy_applied, timeout=20, what="the pool's policy on the top band")
    healthy = await eventually(
        lambda: condition(kube_api, "QuorumHealthy"), timeout=15, what="QuorumHealthy set"
    )
    assert (healthy["status"], healthy["reason"]) == ("True", "AllMembersOnline")
    ready = await eventually(
        lambda: condition(kube_api, "TopologyReady"), timeout=15, what="TopologyReady set"
    )
    assert (ready["status"], ready["reason"]) == ("True", "Declared")

    # The backlog is every band's ready jobs.
    conn = await aio_pika.connect(AMQP_URL)
    async with conn:
        channel = await conn.channel()
        exchange = await channel.get_exchange(broker.topology["jobExchange"])
        key = broker.topology["routingKey"]
        for routing_key in (f"{key}.p7", f"{key}.p7", key):
            await exchange.publish(aio_pika.Message(b"{}"), routing_key=routing_key)
    await eventually(
        lambda: status_when(kube_api, lambda s: s["queue"]["ready"] == 3),
        timeout=20,
        what="status.queue.ready summed over the bands",
    )


async def test_a_classic_queue_is_not_switched_to_quorum(
    kube_api: Any, kube: Any, broker: Broker, operator: None
) -> None:
    job_queue = broker.topology["jobQueue"]
    await broker.api.declare_queue("/", job_queue, {"x-max-priority": 9})
    before = await broker.api.queue("/", job_queue)
    await kube.create(secret())
    await kube.create(pool(broker, topology=QUORUM))
    topo = await eventually(
        lambda: condition(kube_api, "TopologyReady"), timeout=15, what="TopologyReady set"
    )
    assert (topo["status"], topo["reason"]) == ("False", "QueueTypeChange")
    assert f"queue {job_queue} is a classic queue, the spec wants quorum" in topo["message"]
    assert "topology.jobQueue" in topo["message"]
    after = await broker.api.queue("/", job_queue)
    assert after is not None
    assert before is not None
    assert (after.type, after.arguments) == ("classic", {"x-max-priority": 9})
    # The other bands have new names: declared as quorum queues.
    top = await broker.api.queue("/", bands(broker)[0])
    assert top is not None
    assert top.type == "quorum"
    status = await eventually(
        lambda: status_when(kube_api, lambda s: len(s["topology"]["queues"]) == 4),
        timeout=15,
        what="status.topology.queues",
    )
    assert queues_status(status)[job_queue] == {"name": job_queue, "type": "classic"} | {
        "membersOnline": 0,
        "members": 0,
        "membersExpected": 0,
    }
    # Quorum health names the queues that are not quorum queues yet.
    health = await eventually(
        lambda: condition(kube_api, "QuorumHealthy"), timeout=15, what="QuorumHealthy set"
    )
    assert (health["status"], health["reason"]) == ("False", "NotQuorum")
    assert f"{job_queue} (classic)" in health["message"]


async def test_delete_if_empty_deletes_empty_quorum_queues_and_keeps_busy_ones(
    kube_api: Any, kube: Any, broker: Broker, operator: None
) -> None:
    """RabbitMQ refuses `if-empty` on a quorum queue: the operator unbinds, reads the counts
    and deletes without it."""
    await kube.create(secret())
    await kube.create(pool(broker, topology=QUORUM | {"deletionPolicy": "DeleteIfEmpty"}))
    await eventually(
        lambda: (condition(kube_api, "TopologyReady") or {}).get("status") == "True",
        timeout=20,
        what="TopologyReady condition True",
    )
    conn = await aio_pika.connect(AMQP_URL)
    async with conn:
        channel = await conn.channel()
        exchange = await channel.get_exchange(broker.topology["jobExchange"])
        await exchange.publish(aio_pika.Message(b"{}"), routing_key=broker.topology["routingKey"])
    await kube.delete(names.CRD_KIND, NS, "pool")
    await eventually(
        lambda: obj(kube_api, names.CRD_PLURAL, "pool") is None,
        timeout=20,
        what="FFmpegPool pool gone",
    )
    top, middle, base = bands(broker)
    assert await broker.api.queue("/", top) is None
    assert await broker.api.queue("/", middle) is None
    assert await broker.api.queue("/", broker.topology["dlqQueue"]) is None
    assert await broker.api.queue("/", base) is not None  # holds the job


async def _worker(pod: str) -> Any:
    name = names.WORKER_CONNECTION_PREFIX + pod
    return await aio_pika.connect(AMQP_URL, client_properties={"connection_name": name})


async def test_slots_holding_band_jobs_are_busy_and_a_waiting_consumer_is_not(
    kube_api: Any, kube: Any, broker: Broker, operator: None
) -> None:
    """In band mode a slot takes a job with basic.get or from a consumer; either way the job
    stays unacked on its channel until it ends, and only a waiting slot holds a consumer."""
    await kube.create(secret())
    rmq = {"statisticsIntervalSeconds": 1}
    await kube.create(pool(broker, topology=QUORUM, workers={"jobsPerWorker": 2}, rabbitmq=rmq))
    await eventually(
        lambda: (condition(kube_api, "TopologyReady") or {}).get("status") == "True",
        timeout=20,
        what="TopologyReady True",
    )
    top, _, low = bands(broker)
    conns = [await _worker(pod) for pod in ("w-a", "w-b", "w-c")]
    try:
        channel = await conns[0].channel()
        exchange = await channel.get_exchange(broker.topology["jobExchange"])
        key = broker.topology["routingKey"]
        for routing_key in (f"{key}.p7", key):
            await exchange.publish(aio_pika.Message(b"{}"), routing_key=routing_key)
        got = await (await channel.get_queue(top)).get(no_ack=False)  # w-a: basic.get
        assert got is not None
        held = await conns[1].channel()
        await held.set_qos(prefetch_count=1)

        async def hold(message: Any) -> None:  # never acked: the job stays in flight
            return None

        await (await held.get_queue(low)).consume(hold)  # w-b: a consumer's delivery
        waiting = await conns[2].channel()
        await waiting.set_qos(prefetch_count=1)
        await (await waiting.get_queue(top)).consume(hold)  # w-c: waits, holds nothing
        labels = {names.LABEL_POOL: "pool", names.LABEL_COMPONENT: names.COMPONENT_WORKER}
        for pod in ("w-a", "w-b", "w-c"):
            meta = {"name": pod, "namespace": NS, "labels": labels}
            await kube.create({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {}})
        counts = {"replicas": 3, "readyReplicas": 3}
        await kube.patch("Deployment", NS, "pool-worker", {"status": counts}, sub="status")
        await eventually(
            lambda: status_when(
                kube_api, lambda s: (s["workers"]["current"], s["workers"]["busy"]) == (3, 2)
            ),
            timeout=30,
            what="w-a and w-b busy, w-c idle",
        )
    finally:
        for conn in conns:
            await conn.close()
