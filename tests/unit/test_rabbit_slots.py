"""A worker slot never runs two jobs: a busy slot keeps a delivery until it is free, and a lost
consuming connection stops the runs whose deliveries died with it (the broker redelivers them)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

from aio_pika.abc import AbstractRobustConnection

from ffpool.backends.rabbitmq.worker_pool import WorkerPool
from ffpool.domain.jobs import Job, JobSpec, PathInput, ProbeOp
from tests.fakes import (
    Consumer,
    FakeConnection,
    FakeDelivery,
    FakeExecutor,
    FakePublisher,
    worker_pool,
)
from tests.polling import eventually


def pool(tmp_path: Path) -> tuple[WorkerPool, FakePublisher, FakeExecutor]:
    publisher, executor = FakePublisher(), FakeExecutor(hold=True)
    return worker_pool(tmp_path, publisher, executor), publisher, executor


async def slots(workers: WorkerPool, count: int = 2) -> tuple[FakeConnection, list[Consumer]]:
    """Start the pool on a fake connection: the slots' consumers, as the broker calls them."""
    conn = FakeConnection()
    await workers.start(cast(AbstractRobustConnection, conn), count)
    return conn, [conn.consumer("", index) for index in range(count)]


def new_job() -> Job:
    return Job(spec=JobSpec(input=PathInput(path="in.mp4"), operation=ProbeOp()))


async def test_a_busy_slot_keeps_a_second_delivery_until_it_is_free(tmp_path: Path) -> None:
    """A delivery restored to a slot still stopping its lost run waits there: never two runs in
    one slot, and never returned (a return comes back at once, and counts against its job)."""
    workers, _, executor = pool(tmp_path)
    _, (slot0, _) = await slots(workers)
    first, second = FakeDelivery(new_job()), FakeDelivery(new_job())
    await slot0(first)
    await eventually(lambda: len(executor.started) == 1, timeout=5, what="the first run")
    await slot0(second)
    await asyncio.sleep(0.05)  # a turn for a wrong handler to start the second run
    assert second.settled == []
    assert len(executor.started) == 1
    assert workers.busy_jobs() == 1
    executor.release()
    await eventually(lambda: len(executor.started) == 2, timeout=5, what="the second run")
    executor.release()
    await eventually(lambda: second.settled == ["ack"], timeout=5, what="the second settled")
    await workers.drain(0)


async def test_a_lost_connection_stops_its_runs_without_publishing(tmp_path: Path) -> None:
    workers, publisher, executor = pool(tmp_path)
    conn, (slot0, _) = await slots(workers)
    message = FakeDelivery(new_job())
    await slot0(message)
    await eventually(lambda: len(executor.started) == 1, timeout=5, what="the run")
    conn.lose(ConnectionError("broker gone"))
    await eventually(lambda: workers.busy_jobs() == 0, timeout=5, what="the run stopped")
    assert executor.cancelled == executor.started
    assert [e.type for e in publisher.events if e.type != "progress"] == []  # no outcome
    assert publisher.jobs == []  # not republished: the broker redelivers it
    assert message.settled == ["nack(requeue=True)"]  # a no-op on the dead channel


async def test_twin_copies_arriving_together_run_once(tmp_path: Path) -> None:
    """Two copies of one keyed job (a twin publish by two servers) reach two slots in the
    same loop turn: the marker check awaits, and the second copy must not start a second run
    meanwhile; it joins the first and is settled with it."""
    workers, _, executor = pool(tmp_path)
    _, (slot0, slot1) = await slots(workers)
    job = new_job().model_copy(update={"idempotency_key": "twin"})
    one, two = FakeDelivery(job), FakeDelivery(job)
    await slot0(one)
    await slot1(two)
    await eventually(lambda: len(executor.started) == 1, timeout=5, what="the run")
    await asyncio.sleep(0.2)
    assert executor.started == [job.id]
    assert workers.busy_jobs() == 1
    await workers.drain(0)
    assert one.settled == two.settled == ["ack"]  # handed back once, both copies acked


async def test_a_bug_while_handling_requeues_the_delivery(tmp_path: Path) -> None:
    """An unexpected error (here: the republish of a redelivered job) must not leave the
    delivery unsettled: that would hold the slot and the job until the connection closes."""
    workers, publisher, _ = pool(tmp_path)
    _, (slot0, _) = await slots(workers)

    async def broken(job: Job, attempt: int, **_: Any) -> None:
        raise RuntimeError("a bug")

    publisher.publish_job = broken  # type: ignore[method-assign]
    message = FakeDelivery(new_job())
    message.redelivered = True  # counted as an attempt: republished
    await slot0(message)
    await eventually(lambda: workers.busy_slots() == 0, timeout=5, what="the slot freed")
    assert message.settled == ["nack(requeue=True)"]
    await slot0(FakeDelivery(new_job()))
    await eventually(lambda: workers.busy_jobs() == 1, timeout=5, what="the next run")
    await workers.drain(0)
