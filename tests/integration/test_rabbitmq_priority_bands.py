"""Priority bands on the normal broker (QUEUE_TYPE=quorum, three bands): a worker slot takes its
next job from the highest non-empty band, and gives back uncounted whatever it received from a
lower band at the same time (band_slots.py, docs/rabbitmq.md "Priority bands").

MAX_ATTEMPTS=1 throughout: a give-back that counted as an attempt would dead-letter the job at
once (the queue's delivery limit is then 0). Each test has its own topology, deleted at the end.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage

from ffpool import names
from ffpool.backends.rabbitmq import build_node, connection
from ffpool.backends.rabbitmq.band_slots import BandSlots
from ffpool.backends.rabbitmq.publisher import Publisher
from ffpool.domain.events import JobState
from ffpool.topology import Topology
from tests.fakes import FakeExecutor, FakeMetrics
from tests.integration.rabbit_harness import (
    AMQP_URL,
    close_connections,
    job,
    make_settings,
    need_broker,
    prefix_for_test,
    started,
    topology_env,
    until_state,
)
from tests.polling import eventually

pytestmark = [pytest.mark.rabbitmq, pytest.mark.timeout(120)]
BANDS = {"queue_type": "quorum", "max_attempts": 1}
BACKLOG = 3


@pytest.fixture(autouse=True)
def _broker() -> None:
    need_broker()


@asynccontextmanager
async def band_topology() -> AsyncIterator[Topology]:
    """A unique quorum topology with three bands; every queue and exchange deleted after."""
    async with prefix_for_test("b", **BANDS) as prefix:
        topo = Topology(**topology_env(prefix, **BANDS))
        assert len(topo.bands()) == 3
        yield topo


async def test_a_high_priority_job_starts_next_behind_a_backlog(tmp_path: Path) -> None:
    async with band_topology() as topo:
        prefix = topo.job_exchange.removesuffix(".jobs")
        settings = make_settings(prefix, tmp_path, "bands", max_concurrent_jobs=1, **BANDS)
        executor = FakeExecutor(hold=True)  # each job runs until released
        async with started(build_node(settings, FakeMetrics(), executor)) as backend:
            normal = [job() for _ in range(BACKLOG)]
            for j in normal:
                await backend.submit(j)
            await eventually(lambda: executor.started == [normal[0].id], timeout=15, what="run 1")
            urgent = job(priority=9)
            await backend.submit(urgent)
            executor.release(normal[0].id)
            await eventually(lambda: len(executor.started) == 2, timeout=15, what="run 2")
            # The very next job started after the running one finished is the urgent one.
            assert executor.started == [normal[0].id, urgent.id]
            executor.release()
            everyone = [*normal, urgent]
            records = [await until_state(backend, j.id, JobState.COMPLETED) for j in everyone]
            assert [r.attempt for r in records] == [1] * len(everyone)
            assert sorted(executor.started) == sorted(j.id for j in everyone)  # each once
            # The rest of the backlog after it, first in first out within its band.
            assert executor.started == [normal[0].id, urgent.id, *(j.id for j in normal[1:])]
            assert await backend.dead_letters() == []


class Gathering(BandSlots):
    """Band slots that, once a delivery has come, wait until the test's other message has
    come too before cancelling their consumers: two bands delivered to one waiting slot."""

    gathered: asyncio.Event

    async def _until_either(self, one: asyncio.Event, other: asyncio.Event, underlay: Any) -> None:
        await super()._until_either(one, other, underlay)
        await self.gathered.wait()


async def ready(conn: aio_pika.abc.AbstractConnection, queue: str) -> tuple[int, int]:
    """(ready messages, consumers) of a queue, from a passive declare."""
    channel = await conn.channel()
    async with channel:
        declared = await channel.declare_queue(queue, passive=True)
        result = declared.declaration_result
        return int(result.message_count or 0), int(result.consumer_count or 0)


async def test_a_waiting_slot_keeps_the_higher_band_and_gives_the_lower_back(
    tmp_path: Path,
) -> None:
    async with band_topology() as topo:
        top, _, bottom = topo.bands()
        publisher = Publisher(AMQP_URL, "bands-test", topo, 5.0)
        await publisher.start()  # declares every band
        ran: list[AbstractIncomingMessage] = []

        async def on_message(slot: int, message: AbstractIncomingMessage) -> None:
            ran.append(message)
            await message.ack()

        # Once the kept job runs, the slot waits on it: it must not take the copy meanwhile.
        done = asyncio.Event()
        held = asyncio.create_task(done.wait())
        slots = Gathering(
            topo, 5.0, on_message, publisher.republish_unread, lambda _: held if ran else None
        )
        slots.gathered = asyncio.Event()
        conn = await connection.connect(AMQP_URL, "bands-worker", 5.0)
        probe = await aio_pika.connect(AMQP_URL, timeout=5)
        try:
            await slots.start(conn, 1)
            for band in topo.bands():  # the slot waits: one consumer on every band
                await eventually(
                    lambda q=band.queue: _consumed(probe, q), timeout=15, what="consumers"
                )
            low, high = job(priority=0), job(priority=9)
            await publisher.publish_job(low, 1)
            await publisher.publish_job(high, 1)
            for band in (top, bottom):  # both delivered to the slot, neither settled yet
                await eventually(lambda q=band.queue: _taken(probe, q), timeout=15, what="taken")
            slots.gathered.set()
            await eventually(lambda: len(ran) == 1, timeout=15, what="the kept delivery")
            assert ran[0].message_id == high.id
            copy = await _copy_of(probe, bottom.queue)
            assert copy.message_id == low.id
            headers = dict(copy.headers or {})
            assert headers[names.HEADER_ATTEMPT] == 1  # unchanged: not counted
            assert int(headers.get(names.HEADER_DELIVERY_COUNT, 0)) == 0
            assert copy.body == low.model_dump_json().encode()
            done.set()
            await slots.cancel_all()
            await connection.close_quietly(conn, 5.0)
            # The original was acked: closing the slot's connection brings nothing back.
            assert (await ready(probe, bottom.queue))[0] == 0
            assert (await ready(probe, top.queue))[0] == 0
        finally:
            done.set()
            await slots.cancel_all()
            await probe.close()
            await connection.close_quietly(conn, 5.0)
            await publisher.stop()


async def _consumed(conn: aio_pika.abc.AbstractConnection, queue: str) -> bool:
    return (await ready(conn, queue))[1] == 1


async def _taken(conn: aio_pika.abc.AbstractConnection, queue: str) -> bool:
    """The queue's one message is out (delivered, unacked) and no copy is back yet."""
    return (await ready(conn, queue))[0] == 0


async def _copy_of(conn: aio_pika.abc.AbstractConnection, queue: str) -> AbstractIncomingMessage:
    """The given-back copy in `queue` (its original acked: no slot consumes there any more
    but a new one; the test reads it with basic.get and acks it)."""
    channel = await conn.channel()
    q = await channel.get_queue(queue, ensure=False)
    message = await eventually(
        lambda: q.get(no_ack=True, fail=False, timeout=5), timeout=15, what="the given-back copy"
    )
    assert message is not None
    return message


async def test_a_slot_survives_its_connection_being_closed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The broker closes the worker's connection while its slot waits on its consumers: the
    slot waits for the robust connection to come back and takes the next job as before."""
    async with band_topology() as topo:
        publisher = Publisher(AMQP_URL, "bands-test", topo, 5.0)
        await publisher.start()
        ran: list[str | None] = []

        async def on_message(slot: int, message: AbstractIncomingMessage) -> None:
            ran.append(message.message_id)
            await message.ack()

        slots = BandSlots(topo, 5.0, on_message, publisher.republish_unread, lambda _: None)
        name = f"bands-worker-{uuid.uuid4().hex[:8]}"
        conn = await connection.connect(AMQP_URL, name, 5.0)
        probe = await aio_pika.connect(AMQP_URL, timeout=5)
        try:
            await slots.start(conn, 1)
            bottom = topo.bands()[-1].queue
            await eventually(lambda: _consumed(probe, bottom), timeout=15, what="consumers")
            await eventually(lambda: close_connections(name), timeout=15, what="the kill")
            after = job(priority=5)
            await publisher.publish_job(after, 1)
            await eventually(lambda: ran == [after.id], timeout=60, what="the job after")
            assert "worker slot: broker call failed" in capsys.readouterr().out  # it was lost
        finally:
            await slots.cancel_all()
            await probe.close()
            await connection.close_quietly(conn, 5.0)
            await publisher.stop()


async def test_a_lent_slot_takes_jobs_for_the_loan_only() -> None:
    async with band_topology() as topo:
        publisher = Publisher(AMQP_URL, "bands-test", topo, 5.0)
        await publisher.start()
        ran: list[tuple[int, str | None]] = []

        async def on_message(slot: int, message: AbstractIncomingMessage) -> None:
            ran.append((slot, message.message_id))
            await message.ack()

        slots = BandSlots(topo, 5.0, on_message, publisher.republish_unread, lambda _: None)
        conn = await connection.connect(AMQP_URL, "bands-lender", 5.0)
        probe = await aio_pika.connect(AMQP_URL, timeout=5)
        bottom = topo.bands()[-1].queue
        try:
            await slots.start(conn, 0)
            async with slots.lend(lambda _: None, lambda: False):
                lent = job()
                await publisher.publish_job(lent, 1)
                await eventually(lambda: ran == [(0, lent.id)], timeout=15, what="the lent run")
            # The loan is over: its slot takes nothing more and holds no consumer.
            await publisher.publish_job(job(), 1)
            assert await ready(probe, bottom) == (1, 0)
            assert ran == [(0, lent.id)]
        finally:
            await slots.cancel_all()
            await probe.close()
            await connection.close_quietly(conn, 5.0)
            await publisher.stop()
