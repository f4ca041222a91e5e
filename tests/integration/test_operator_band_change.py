"""A change of priority bands with jobs waiting (KMock + the real operator + the real broker):
the retired bands' old routing keys are forwarded to the bands now holding their priorities,
their jobs moved there unchanged (each by its own priority), and the emptied queues deleted
(docs/operator.md, "Priority band changes"). Also the mover on its own: properties kept, and a
job it cannot route stays where it was."""

from typing import Any

import aio_pika
import pytest
from pydantic import SecretStr

from ffpool import names
from ffpool_operator.broker import job_mover
from ffpool_operator.decisions.broker_model import BrokerUnavailable
from tests.integration.test_operator_events import pool_events
from tests.kmock_ext import ApiServer
from tests.operator_harness.helpers import AMQP_URL, NS, Broker, condition, pool, secret
from tests.polling import eventually

pytest_plugins = ["tests.operator_harness.fixtures"]
pytestmark = [pytest.mark.rabbitmq, pytest.mark.kmock(cls=ApiServer)]
P = names.BAND_SUFFIX


async def publish(broker: Broker, jobs: list[tuple[str, int]]) -> None:
    """(routing key suffix, priority) per job, with its priority as the job id."""
    conn = await aio_pika.connect(AMQP_URL)
    async with conn:
        channel = await conn.channel()
        exchange = await channel.get_exchange(broker.topology["jobExchange"])
        for suffix, priority in jobs:
            message = aio_pika.Message(
                f"job {priority}".encode(),
                headers={"x-job-id": f"j{priority}"},
                priority=priority,
                message_id=f"j{priority}",
                content_type="application/json",
            )
            await exchange.publish(message, routing_key=broker.topology["routingKey"] + suffix)


async def drain(queue: str) -> list[tuple[bytes, Any, int | None, str | None]]:
    conn = await aio_pika.connect(AMQP_URL)
    got = []
    async with conn:
        channel = await conn.channel()
        q = await channel.get_queue(queue)
        while (m := await q.get(no_ack=True, fail=False)) is not None:
            got.append((m.body, (m.headers or {}).get("x-job-id"), m.priority, m.message_id))
    return sorted(got)


async def test_fewer_bands_move_the_retired_bands_jobs_and_delete_them(
    kube_api: Any, kube: Any, broker: Broker, operator: None
) -> None:
    jq = broker.topology["jobQueue"]
    await kube.create(secret())
    await kube.create(pool(broker, topology={"queueType": "quorum", "priorityBands": 3}))
    await eventually(
        lambda: (condition(kube_api, "TopologyReady") or {}).get("status") == "True",
        timeout=20,
        what="TopologyReady condition True",
    )
    await publish(broker, [(f"{P}7", 9), (f"{P}7", 8), (f"{P}4", 6), (f"{P}4", 4)])
    change = {"spec": {"topology": {"priorityBands": 2}}}
    await kube.patch(names.CRD_KIND, NS, "pool", change)

    async def retired_gone() -> bool:
        return all([await broker.api.queue("/", f"{jq}{P}{n}") is None for n in (7, 4)])

    await eventually(retired_gone, timeout=40, what="the retired bands deleted")
    # Servers not yet rolled still publish with the old keys: those reach live bands.
    ex = broker.topology["jobExchange"]
    top_keys = {b.routing_key for b in await broker.api.bindings("/", ex, f"{jq}{P}5")}
    base_keys = {b.routing_key for b in await broker.api.bindings("/", ex, jq)}
    key = broker.topology["routingKey"]
    assert f"{key}{P}7" in top_keys
    assert f"{key}{P}4" in base_keys
    # Each job in the band of its own priority, unchanged.
    assert await drain(f"{jq}{P}5") == [
        (b"job 6", "j6", 6, "j6"),
        (b"job 8", "j8", 8, "j8"),
        (b"job 9", "j9", 9, "j9"),
    ]
    assert await drain(jq) == [(b"job 4", "j4", 4, "j4")]
    moved = await eventually(
        lambda: pool_events(kube_api, "JobsMoved"), timeout=15, what="JobsMoved event"
    )
    assert "moved" in moved[0]["message"]
    retired = pool_events(kube_api, "PriorityBandRetired")
    assert retired
    assert "rename" not in retired[0]["message"]


async def test_a_job_the_mover_cannot_route_stays_in_the_old_queue(broker: Broker) -> None:
    old, target = f"{broker.prefix}.jobs{P}7", f"{broker.prefix}.jobs"
    ex = broker.topology["jobExchange"]
    await broker.api.declare_exchange("/", ex, "direct")
    await broker.api.declare_queue("/", old, {"x-queue-type": "quorum"})
    await broker.api.declare_queue("/", target, {"x-queue-type": "quorum"})
    conn = await aio_pika.connect(AMQP_URL)
    async with conn:
        channel = await conn.channel()
        await (await channel.get_queue(target)).bind(ex, routing_key="live")
        for n in (1, 2):
            message = aio_pika.Message(b"x", headers={"n": n}, priority=n)
            await channel.default_exchange.publish(message, routing_key=old)
    url = SecretStr(AMQP_URL)

    async def both_ready() -> bool:
        moved = await job_mover.move(url, 5.0, old, ex, lambda _: "live", limit=0)
        return moved.ready == 2

    await eventually(both_ready, timeout=10, what="two jobs in the old queue")
    with pytest.raises(BrokerUnavailable):  # no queue bound with that key: returned
        await job_mover.move(url, 5.0, old, ex, lambda _: "nowhere")
    one = await job_mover.move(url, 5.0, old, ex, lambda _: "live", limit=1)
    assert (one.moved, one.ready) == (1, 1)
    rest = await job_mover.move(url, 5.0, old, ex, lambda _: "live")
    assert (rest.moved, rest.ready) == (1, 0)
    got = await drain(target)
    assert len(got) == 2
    assert sorted(p for _, _, p, _ in got if p is not None) == [1, 2]
