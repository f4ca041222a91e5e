"""The three-node RabbitMQ cluster on loopback (scripts/rabbitmq-cluster.sh,
tests/rabbit_cluster.py): it forms one cluster, a quorum queue on it is replicated to all three
nodes, and it survives a SIGKILL of its leader's node without losing a confirmed message; the
killed node rejoins.

Timings (cluster start, leader re-election, restart) are printed: `pytest -s` shows them.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import aio_pika
import pytest

from tests.polling import eventually
from tests.rabbit_cluster import RabbitCluster

pytest_plugins = ["tests.integration.rabbit_cluster_fixtures"]
# The first test also pays for the session's cluster start (about 30 s on 2 cores, more when
# the machine is busy); each test itself stays well under 90 s.
pytestmark = [pytest.mark.rabbitmq, pytest.mark.timeout(300)]

MESSAGES = 50
QUORUM: dict[str, Any] = {"x-queue-type": "quorum"}


def names(cluster: RabbitCluster) -> list[str]:
    return sorted(node.name for node in cluster.nodes)


async def replicated(cluster: RabbitCluster, queue: str) -> dict[str, Any] | None:
    """The queue once it has a leader and all three members online."""
    info = await cluster.queue_info(queue)
    if info is None or not info.get("leader"):
        return None
    if sorted(info.get("members", [])) != names(cluster):
        return None
    return info if sorted(info.get("online", [])) == names(cluster) else None


async def publish(url: str, queue: str, bodies: list[bytes]) -> None:
    """Declare the quorum queue and publish persistent messages, each confirmed (by a majority
    of its members) before the next."""
    conn = await aio_pika.connect(url, timeout=5)
    async with conn:
        channel = await conn.channel(publisher_confirms=True)
        await channel.declare_queue(queue, durable=True, arguments=QUORUM, timeout=10)
        for body in bodies:
            message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
            await channel.default_exchange.publish(message, routing_key=queue, timeout=10)


async def consume_all(url: str, queue: str, count: int) -> list[bytes]:
    """`count` messages from the queue (acknowledged), then check it is empty."""
    conn = await aio_pika.connect(url, timeout=5)
    got: list[bytes] = []
    async with conn:
        channel = await conn.channel()
        await channel.set_qos(prefetch_count=count)
        q = await channel.declare_queue(queue, passive=True, timeout=10)
        async with asyncio.timeout(30), q.iterator() as messages:
            async for message in messages:
                got.append(message.body)
                await message.ack()
                if len(got) == count:
                    break
        assert await q.get(fail=False, timeout=10) is None, "more messages than published"
    return got


async def delete_queue(url: str, queue: str) -> None:
    conn = await aio_pika.connect(url, timeout=5)
    async with conn:
        channel = await conn.channel()
        await channel.queue_delete(queue, timeout=10)


async def test_three_nodes_form_one_cluster(rabbit_cluster: RabbitCluster) -> None:
    status = await rabbit_cluster.cluster_status()
    assert sorted(status["running_nodes"]) == names(rabbit_cluster)
    assert sorted(status["disk_nodes"]) == names(rabbit_cluster)
    for node in rabbit_cluster.nodes:  # every node sees the same three running
        seen = await rabbit_cluster.api("nodes", node)
        assert sorted(n["name"] for n in seen if n["running"]) == names(rabbit_cluster)


async def test_a_classic_queue_is_held_by_one_node(rabbit_cluster: RabbitCluster) -> None:
    queue = f"fftest.classic.{uuid.uuid4().hex[:8]}"
    node = rabbit_cluster.nodes[1]
    conn = await aio_pika.connect(node.amqp_url, timeout=5)
    async with conn:
        channel = await conn.channel()
        await channel.declare_queue(queue, durable=True, timeout=10)
        holder: str | None = await eventually(
            lambda: rabbit_cluster.leader_of(queue), timeout=15, what="the classic queue's node"
        )
        assert holder == node.name  # declared on ffp2: lives on ffp2 (client-local)
        await channel.queue_delete(queue, timeout=10)


async def test_quorum_queue_survives_a_kill_of_its_leader(rabbit_cluster: RabbitCluster) -> None:
    cluster = rabbit_cluster
    queue = f"fftest.quorum.{uuid.uuid4().hex[:8]}"
    bodies = [f"message {i}".encode() for i in range(MESSAGES)]
    began = time.monotonic()
    await publish(cluster.nodes[0].amqp_url, queue, bodies)
    published = time.monotonic() - began
    info: dict[str, Any] | None = await eventually(
        lambda: replicated(cluster, queue), timeout=30, what="3 members online and a leader"
    )
    assert info is not None
    leader = str(info["leader"])
    survivor = next(node for node in cluster.nodes if node.name != leader)

    killed = time.monotonic()
    await cluster.kill(leader)

    async def new_leader() -> str | None:
        found = await cluster.leader_of(queue)
        return found if found not in (None, leader) else None

    elected_on: str | None = await eventually(
        new_leader, timeout=30, what="a new leader", interval=0.1
    )
    elected = time.monotonic() - killed
    assert elected_on in names(cluster)
    got = await consume_all(survivor.amqp_url, queue, MESSAGES)
    assert sorted(got) == sorted(bodies)
    consumed = time.monotonic() - killed

    restart = await cluster.restart(leader)
    status = await cluster.cluster_status()
    assert sorted(status["running_nodes"]) == names(cluster)
    back: dict[str, Any] | None = await eventually(
        lambda: replicated(cluster, queue), timeout=30, what="the restarted member online"
    )
    assert back is not None
    await delete_queue(survivor.amqp_url, queue)
    print(
        f"\nquorum failover: published {MESSAGES} confirmed in {published:.2f} s; "
        f"killed {leader}; new leader {elected_on} after {elected:.2f} s; "
        f"all {MESSAGES} consumed from {survivor.name} {consumed:.2f} s after the kill; "
        f"{leader} restarted and rejoined in {restart:.1f} s; "
        f"test took {time.monotonic() - began:.1f} s"
    )
