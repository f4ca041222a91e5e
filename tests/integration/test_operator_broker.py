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
    obj,
    pool,
    replicas,
    secret,
    status_when,
)
from tests.polling import eventually

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
    topo = await eventually(
        lambda: condition(kube_api, "TopologyReady"), timeout=15, what="TopologyReady condition set"
    )
    assert topo["status"] == "False"
    assert topo["reason"] == "QueueArgumentsDiffer"
    assert "x-max-priority: queue has 5, spec wants 9" in topo["message"]
    # The workloads are still there, the pool is otherwise healthy, the queue untouched.
    assert (
        await eventually(
            lambda: condition(kube_api, "Ready"), timeout=15, what="Ready condition set"
        )
    )["status"] == "True"
    assert obj(kube_api, "deployments", "pool-worker") is not None
    queue = await broker.api.queue("/", broker.topology["jobQueue"])
    assert queue is not None
    assert queue.arguments["x-max-priority"] == 5


async def test_queue_deleted_in_broker_is_recreated(
    kube_api: Any, kube: Any, broker: Broker, operator: None
) -> None:
    await kube.create(secret())
    await kube.create(pool(broker))
    await eventually(
        lambda: (condition(kube_api, "TopologyReady") or {}).get("status") == "True",
        timeout=15,
        what="TopologyReady condition True",
    )
    status = await broker.raw("DELETE", f"/queues/%2F/{broker.topology['jobQueue']}")
    assert status == 204
    assert await broker.api.queue("/", broker.topology["jobQueue"]) is None
    queue = await eventually(
        lambda: broker.api.queue("/", broker.topology["jobQueue"]),
        timeout=10,
        what="job queue redeclared",
    )
    assert queue.arguments == Topology().queue_arguments() | {
        "x-dead-letter-exchange": broker.topology["jobExchange"],
        "x-dead-letter-routing-key": broker.topology["dlqQueue"],
    }


async def test_delete_if_empty_keeps_a_queue_holding_jobs(
    kube_api: Any, kube: Any, broker: Broker, operator: None
) -> None:
    await kube.create(secret())
    await kube.create(pool(broker, topology={"deletionPolicy": "DeleteIfEmpty"}))
    await eventually(
        lambda: (condition(kube_api, "TopologyReady") or {}).get("status") == "True",
        timeout=15,
        what="TopologyReady condition True",
    )
    await publish(broker, 1)
    await kube.delete(names.CRD_KIND, NS, "pool")
    await eventually(
        lambda: obj(kube_api, names.CRD_PLURAL, "pool") is None,
        timeout=15,
        what="FFmpegPool pool gone",
    )
    assert await broker.api.queue("/", broker.topology["jobQueue"]) is not None  # holds a job
    assert await broker.api.queue("/", broker.topology["dlqQueue"]) is None  # was empty

    def warned() -> bool:
        events = [e for (r, _, _), e in kube_api.objects.items() if r.plural == "events"]
        return any(e.get("reason") == "QueuesKept" and e.get("type") == "Warning" for e in events)

    await eventually(warned, timeout=15, what="warned")


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


async def _api_sees_busy(broker: Broker) -> bool:
    """The management API's channel stats lag a few seconds behind the deliveries."""
    conns = {
        c.name
        for c in await broker.api.connections("/")
        if (c.user_provided_name or "").startswith(names.WORKER_CONNECTION_PREFIX + "w-")
    }
    channels = [c for c in await broker.api.channels("/") if c.connection_name in conns]
    return sum(c.unacked for c in channels) >= 2


async def _two_busy_two_idle(kube_api: Any, kube: Any, broker: Broker, conns: list[Any]) -> None:
    """Pods w-a, w-b each hold a job (seen by the API); w-c, w-d have no connection. Returns
    once the operator has seen all four in one poll, the idle ones settled: 2 busy of 4."""
    await eventually(
        lambda: (condition(kube_api, "TopologyReady") or {}).get("status") == "True",
        timeout=15,
        what="TopologyReady condition True",
    )
    await publish(broker, 2)
    for conn in conns:
        await _hold_one_job(conn, broker.topology["jobQueue"])
    await eventually(lambda: _api_sees_busy(broker), timeout=20, what="_api_sees_busy(broker)")
    labels = {names.LABEL_POOL: "pool", names.LABEL_COMPONENT: names.COMPONENT_WORKER}
    pods = ("w-a", "w-b", "w-c", "w-d")
    for pod in pods:
        meta = {"name": pod, "namespace": NS, "labels": labels}
        await kube.create({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {}})
    # `busy == 2` alone is no proof: a poll that listed the pods between the creates of w-b and
    # w-c saw 2 busy of 2, and one between w-c and w-d starts w-c's settle clock a poll before
    # w-d's (a scale-down would then go 4 → 3 → 2, and KMock, running no ReplicaSet, keeps the
    # first victim, so w-d is never marked). So the pods are also reported on the Deployment's
    # status, as its ReplicaSet would: the daemon reads the Deployment before it lists the pods,
    # so a status showing `current == 4` comes from a poll that listed all four.
    counts = {"replicas": len(pods), "readyReplicas": len(pods)}
    await kube.patch("Deployment", NS, "pool-worker", {"status": counts}, sub="status")

    def all_seen_idle_settled(s: dict[str, Any]) -> bool:
        return (s["workers"]["current"], s["workers"]["busy"]) == (len(pods), 2)

    await eventually(
        lambda: status_when(kube_api, all_seen_idle_settled),
        timeout=15,
        what="status_when(kube_api, all_seen_idle_settled)",
    )


async def test_scale_down_spares_busy_pods(
    kube_api: Any, kube: Any, broker: Broker, operator: None, busy_workers: list[Any]
) -> None:
    await kube.create(secret())
    # The busy pods are visible in the API before the idle ones appear, so the idle pods need
    # not wait the broker's real 5 s statistics interval to settle (victims.settle).
    rmq = {"statisticsIntervalSeconds": 1}
    await kube.create(
        pool(broker, workers={"jobsPerWorker": 4}, autoscaling={"minReplicas": 0}, rabbitmq=rmq)
    )
    await _two_busy_two_idle(kube_api, kube, broker, busy_workers)
    await kube.patch("Deployment", NS, "pool-worker", {"spec": {"replicas": 4}})

    # Backlog 2 at 4 per worker wants 1, but 2 pods are busy: 2 stay, the idle ones go first.
    await eventually(lambda: replicas(kube_api) == 2, timeout=10, what="2 worker replicas")
    costs = {
        p: obj(kube_api, "pods", p)["metadata"]["annotations"][names.ANNOTATION_DELETION_COST]
        for p in ("w-a", "w-b", "w-c", "w-d")
    }
    assert costs == {"w-a": "1000", "w-b": "1000", "w-c": "-1000", "w-d": "-1000"}
    # The status written by the poll that scaled down (the earlier ones also showed busy == 2).
    status = await eventually(
        lambda: status_when(kube_api, lambda s: s["workers"]["desired"] == 2),
        timeout=15,
        what="status workers.desired == 2",
    )
    assert status["workers"]["busy"] == 2
    assert "(kept: 2 busy)" in status["lastScaleReason"]


def _rv(kube_api: Any, plural: str, name: str) -> int:
    return int(obj(kube_api, plural, name)["metadata"]["resourceVersion"])


async def test_manual_scale_down_marks_idle_pods_first(
    kube_api: Any, kube: Any, broker: Broker, operator: None, busy_workers: list[Any]
) -> None:
    """`kubectl scale` with autoscaling off: the user's number wins, but the
    idle pods are marked to go before the count is lowered."""
    rmq = {"statisticsIntervalSeconds": 1}
    await kube.create(secret())
    await kube.create(
        pool(broker, autoscaling={"enabled": False}, workers={"replicas": 4}, rabbitmq=rmq)
    )
    await _two_busy_two_idle(kube_api, kube, broker, busy_workers)
    await kube.patch(names.CRD_KIND, NS, "pool", {"spec": {"workers": {"replicas": 1}}})
    await eventually(lambda: replicas(kube_api) == 1, timeout=10, what="1 worker replica")
    pods = ("w-a", "w-b", "w-c", "w-d")
    costs = {
        p: (obj(kube_api, "pods", p)["metadata"].get("annotations") or {}).get(
            names.ANNOTATION_DELETION_COST
        )
        for p in pods
    }
    assert costs == {"w-a": "1000", "w-b": "1000", "w-c": "-1000", "w-d": "-1000"}
    # Marked before the count went down (resourceVersions rise with every write).
    assert max(_rv(kube_api, "pods", p) for p in pods) < _rv(kube_api, "deployments", "pool-worker")


async def test_delete_if_empty_keeps_a_queue_with_jobs_in_flight(
    kube_api: Any, kube: Any, broker: Broker, operator: None, busy_workers: list[Any]
) -> None:
    """RabbitMQ's if-empty ignores unacked messages: the operator checks them itself."""
    await kube.create(secret())
    await kube.create(pool(broker, topology={"deletionPolicy": "DeleteIfEmpty"}))
    await eventually(
        lambda: (condition(kube_api, "TopologyReady") or {}).get("status") == "True",
        timeout=15,
        what="TopologyReady condition True",
    )
    await publish(broker, 1)
    await _hold_one_job(busy_workers[0], broker.topology["jobQueue"])

    async def in_flight_only() -> bool:
        q = await broker.api.queue("/", broker.topology["jobQueue"])
        return q is not None and (q.messages_ready, q.messages_unacknowledged) == (0, 1)

    await eventually(in_flight_only, timeout=20, what="in flight only")
    await kube.delete(names.CRD_KIND, NS, "pool")
    await eventually(
        lambda: obj(kube_api, names.CRD_PLURAL, "pool") is None,
        timeout=15,
        what="FFmpegPool pool gone",
    )
    assert await broker.api.queue("/", broker.topology["jobQueue"]) is not None
    assert await broker.api.queue("/", broker.topology["dlqQueue"]) is None

    def warned() -> str:
        events = [e for (r, _, _), e in kube_api.objects.items() if r.plural == "events"]
        kept = [e for e in events if e.get("reason") == "QueuesKept" and e["type"] == "Warning"]
        return str(kept[0]["message"]) if kept else ""

    assert "1 in flight" in await eventually(warned, timeout=15, what="warned")
