"""A worker slot never runs two jobs: a busy slot requeues a delivery, and a lost consuming
connection stops the runs whose deliveries died with it (the broker redelivers them)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from ffpool.backends.rabbitmq.publisher import Publisher
from ffpool.backends.rabbitmq.worker_pool import WorkerPool
from ffpool.domain.events import CompletedEvent, FailedEvent, JobEvent, ProgressEvent
from ffpool.domain.jobs import Job, JobSpec, PathInput, ProbeOp
from ffpool.settings import Settings
from ffpool.topology import Topology


class FakePublisher:
    def __init__(self) -> None:
        self.events: list[JobEvent] = []
        self.jobs: list[str] = []

    async def publish_event(self, event: JobEvent, *, confirm: bool) -> None:
        self.events.append(event)

    async def publish_events(self, events: list[JobEvent]) -> None:
        self.events.extend(events)

    async def publish_job(self, job: Job, attempt: int, **_: Any) -> None:
        self.jobs.append(job.id)

    async def publish_dead_letter(self, body: bytes, headers: dict[str, Any]) -> None:
        raise AssertionError("nothing goes to the DLQ here")


class BlockingExecutor:
    def __init__(self) -> None:
        self.started: list[str] = []
        self.cancelled: list[str] = []

    async def execute(
        self, job: Job, on_progress: Callable[[ProgressEvent], None]
    ) -> CompletedEvent | FailedEvent:
        self.started.append(job.id)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.append(job.id)
            raise
        raise AssertionError("unreachable")


class FakeMessage:
    def __init__(self, job: Job) -> None:
        self.body = job.model_dump_json().encode()
        self.headers: dict[str, Any] = {}
        self.redelivered = False
        self.message_id = job.id
        self.delivery_tag = 1
        self.channel = self  # acks go to the channel without a drain (runner._ack)
        self.settled: list[str] = []

    async def basic_ack(self, delivery_tag: int, wait: bool) -> None:
        self.settled.append("ack")

    async def nack(self, requeue: bool = True) -> None:
        self.settled.append(f"nack(requeue={requeue})")


class FakeMetrics:
    def observe_submitted(self) -> None: ...

    def observe_finished(self, operation: str, state: Any, seconds: float) -> None: ...


def pool(tmp_path: Path) -> tuple[WorkerPool, FakePublisher, BlockingExecutor]:
    settings = Settings(backend="rabbitmq", media_root=tmp_path, instance_name="w",
                        broker_timeout_seconds=2)  # fmt: skip
    publisher, executor = FakePublisher(), BlockingExecutor()
    workers = WorkerPool(settings, Topology.from_settings(settings), cast(Publisher, publisher),
                         executor, FakeMetrics(), None)  # fmt: skip
    return workers, publisher, executor


def new_job() -> Job:
    return Job(spec=JobSpec(input=PathInput(path="in.mp4"), operation=ProbeOp()))


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not condition():
            await asyncio.sleep(0.01)


async def test_a_busy_slot_requeues_a_second_delivery(tmp_path: Path) -> None:
    workers, _, executor = pool(tmp_path)
    first, second = FakeMessage(new_job()), FakeMessage(new_job())
    await workers._on_message(0, first)  # type: ignore[arg-type]
    await until(lambda: len(executor.started) == 1)
    await workers._on_message(0, second)  # type: ignore[arg-type]
    assert second.settled == ["nack(requeue=True)"]
    assert workers.busy_jobs() == 1
    await workers._on_message(1, second)  # type: ignore[arg-type]
    await until(lambda: len(executor.started) == 2)  # another slot is free: it runs there
    await workers.drain(0)


async def test_a_lost_connection_stops_its_runs_without_publishing(tmp_path: Path) -> None:
    workers, publisher, executor = pool(tmp_path)
    message = FakeMessage(new_job())
    await workers._on_message(0, message)  # type: ignore[arg-type]
    await until(lambda: len(executor.started) == 1)
    workers._on_connection_lost(None, ConnectionError("broker gone"))
    await until(lambda: workers.busy_jobs() == 0)
    assert executor.cancelled == executor.started
    assert [e.type for e in publisher.events if e.type != "progress"] == []  # no outcome
    assert publisher.jobs == []  # not republished: the broker redelivers it
    assert message.settled == ["nack(requeue=True)"]  # a no-op on the dead channel


async def test_twin_copies_arriving_together_run_once(tmp_path: Path) -> None:
    """Two copies of one keyed job (a twin publish by two servers) reach two slots in the
    same loop turn: the marker check awaits, and the second copy must not start a second run
    meanwhile; it joins the first and is settled with it."""
    workers, _, executor = pool(tmp_path)
    job = new_job().model_copy(update={"idempotency_key": "twin"})
    one, two = FakeMessage(job), FakeMessage(job)
    await workers._on_message(0, one)  # type: ignore[arg-type]
    await workers._on_message(1, two)  # type: ignore[arg-type]
    await until(lambda: len(executor.started) == 1)
    await asyncio.sleep(0.2)
    assert executor.started == [job.id]
    assert workers.busy_jobs() == 1
    await workers.drain(0)
    assert one.settled == two.settled == ["ack"]  # handed back once, both copies acked


async def test_a_bug_while_handling_requeues_the_delivery(tmp_path: Path) -> None:
    """An unexpected error (here: the republish of a redelivered job) must not leave the
    delivery unsettled: that would hold the slot and the job until the connection closes."""
    workers, publisher, _ = pool(tmp_path)

    async def broken(job: Job, attempt: int, **_: Any) -> None:
        raise RuntimeError("a bug")

    publisher.publish_job = broken  # type: ignore[method-assign]
    message = FakeMessage(new_job())
    message.redelivered = True  # counted as an attempt: republished
    await workers._on_message(0, message)  # type: ignore[arg-type]
    await until(lambda: not workers._busy_slots)
    assert message.settled == ["nack(requeue=True)"]
    await workers._on_message(0, FakeMessage(new_job()))  # type: ignore[arg-type]
    await until(lambda: workers.busy_jobs() == 1)  # the slot is free again
    await workers.drain(0)
