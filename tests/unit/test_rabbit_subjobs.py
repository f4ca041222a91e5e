"""Chunk jobs in the RabbitMQ worker pool, on fakes (the broker's part is in
tests/integration/test_rabbitmq_subjobs.py): their events go to their parent's route only,
and a chunk of a finished parent is not run."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from ffpool import names
from ffpool.backends.base import BackendUnavailable, QueueFull
from ffpool.backends.rabbitmq import attempts, wire
from ffpool.backends.rabbitmq.bucket_markers import BucketMarkers
from ffpool.backends.rabbitmq.control import Control
from ffpool.backends.rabbitmq.feed import EventsFeed
from ffpool.backends.rabbitmq.markers import JobMarkers, Markers
from ffpool.backends.rabbitmq.outbox import Outbox
from ffpool.backends.rabbitmq.publisher import Publisher
from ffpool.backends.rabbitmq.subjobs import RabbitSubJobs
from ffpool.backends.rabbitmq.worker_pool import WorkerPool
from ffpool.domain.events import (
    CancelledEvent,
    CompletedEvent,
    FailedEvent,
    FailureCode,
    JobEvent,
    ProgressEvent,
)
from ffpool.domain.jobs import ChunkTask, Job, JobSpec, PathInput, ProbeOp, chunk_job_id
from ffpool.ffmpeg.outcome import JobFailure
from ffpool.settings import Settings
from ffpool.storage.memory_objects import MemoryObjectStore
from ffpool.topology import Topology
from tests.fakes import (
    FakeConnection,
    FakeDelivery,
    FakeExecutor,
    FakePublisher,
    no_outcomes,
    worker_pool,
)
from tests.polling import eventually

PARENT = "a" * 32
OTHER = "b" * 32


def chunk(index: int = 0, parent: str = PARENT) -> Job:
    return Job(
        id=chunk_job_id(parent, index),
        spec=JobSpec(input=PathInput(path="in.mp4"), operation=ProbeOp()),
        chunk=ChunkTask(parent=parent, index=index, count=2, start_s=0.0, duration_s=1.0),
    )


class RoutingPublisher(FakePublisher):
    def __init__(self) -> None:
        super().__init__()
        self.routed: list[tuple[str, JobEvent, bool]] = []

    async def publish_chunk_events(
        self, parent_id: str, events: list[JobEvent], *, confirm: bool
    ) -> None:
        self.routed.extend((parent_id, e, confirm) for e in events)


async def test_the_outbox_publishes_one_message_per_route() -> None:
    sent: list[tuple[str | None, list[str]]] = []

    async def publish(events: list[JobEvent]) -> None:
        sent.append((None, [e.job_id for e in events]))

    async def publish_routed(route: str, events: list[JobEvent]) -> None:
        sent.append((route, [e.job_id for e in events]))

    outbox = Outbox(publish, publish_routed)
    ids = ["1" * 32, "2" * 32, "3" * 32]
    await asyncio.gather(
        outbox.put(ProgressEvent(job_id=ids[0]), route=PARENT),
        outbox.put(ProgressEvent(job_id=ids[1])),
        outbox.put(ProgressEvent(job_id=ids[2]), route=PARENT),
        outbox.put(ProgressEvent(job_id=ids[0]), route=OTHER),
    )
    assert sent == [(PARENT, [ids[0], ids[2]]), (None, [ids[1]]), (OTHER, [ids[0]])]


async def test_a_chunk_jobs_events_go_to_its_parent_only(tmp_path: Path) -> None:
    publisher, executor = RoutingPublisher(), FakeExecutor()
    workers = worker_pool(tmp_path, publisher, executor)
    conn = FakeConnection()
    await workers.start(cast(AbstractRobustConnection, conn), 1)
    job = chunk()
    message = FakeDelivery(job)
    await conn.consumer("")(message)
    await eventually(lambda: message.settled == ["ack"], timeout=5, what="the chunk settled")
    assert executor.started == [job.id]
    assert publisher.events == []  # nothing for the servers
    kinds = [(parent, type(e).__name__, confirm) for parent, e, confirm in publisher.routed]
    assert kinds[-1] == (PARENT, "CompletedEvent", True)
    assert (PARENT, "ProgressEvent", True) in kinds
    assert isinstance(await Markers(tmp_path).completed(job.id), CompletedEvent)


async def test_a_chunk_of_a_finished_parent_is_not_run(tmp_path: Path) -> None:
    publisher, executor = RoutingPublisher(), FakeExecutor()
    markers = Markers(tmp_path)
    await markers.mark_cancelled(PARENT)
    workers = worker_pool(tmp_path, publisher, executor)
    conn = FakeConnection()
    await workers.start(cast(AbstractRobustConnection, conn), 1)
    job = chunk(1)
    message = FakeDelivery(job)
    await conn.consumer("")(message)
    await eventually(lambda: message.settled == ["ack"], timeout=5, what="the orphan settled")
    assert executor.started == []
    (outcome,) = await markers.outcomes([job.id])
    assert isinstance(outcome, CancelledEvent)
    assert [(p, e.type) for p, e, _ in publisher.routed] == [(PARENT, "cancelled")]


async def lent_consumer(
    tmp_path: Path, executor: FakeExecutor
) -> tuple[WorkerPool, RoutingPublisher, FakeConnection]:
    """A started one-slot pool; a slot it lends is its second consumer."""
    publisher = RoutingPublisher()
    workers = worker_pool(tmp_path, publisher, executor)
    conn = FakeConnection()
    await workers.start(cast(AbstractRobustConnection, conn), 1)
    return workers, publisher, conn


async def test_a_lent_slot_is_drained_like_the_others(tmp_path: Path) -> None:
    executor = FakeExecutor(hold=True)
    workers, publisher, conn = await lent_consumer(tmp_path, executor)
    async with workers.lend_slot():
        assert len(conn.consumers) == 2
        message = FakeDelivery(chunk())
        await conn.consumer("", 1)(message)
        await eventually(lambda: len(executor.started) == 1, timeout=5, what="the lent run")
        await workers.drain(0)  # SIGTERM: stopped and handed back, same attempt
        assert publisher.jobs == [chunk().id]
        assert message.settled == ["ack"]
    async with workers.lend_slot():  # draining: nothing more is lent
        assert len(conn.consumers) == 2


async def test_a_lent_slots_run_stops_with_its_connection(tmp_path: Path) -> None:
    executor = FakeExecutor(hold=True)
    workers, publisher, conn = await lent_consumer(tmp_path, executor)
    async with workers.lend_slot():
        message = FakeDelivery(chunk())
        await conn.consumer("", 1)(message)
        await eventually(lambda: len(executor.started) == 1, timeout=5, what="the lent run")
        conn.lose(ConnectionError("broker gone"))
        await eventually(lambda: workers.busy_jobs() == 0, timeout=5, what="the run stopped")
    assert executor.cancelled == executor.started
    assert message.settled == ["nack(requeue=True)"]  # the broker redelivers it
    assert publisher.jobs == []


@dataclass
class DeadLetter:
    """A message of the servers' dead-letter watch (feed.py)."""

    body: bytes
    headers: dict[str, Any] = field(default_factory=dict)


def dead_letter(job: Job) -> DeadLetter:
    failure = {names.HEADER_FAILURE_CODE: "too_many_attempts", names.HEADER_FAILURE_REASON: "x"}
    return DeadLetter(job.model_dump_json().encode(), {**wire.job_headers(job), **failure})


async def test_a_dead_lettered_chunk_gets_its_marker_but_no_clients_record() -> None:
    marked: list[FailedEvent] = []

    async def mark(event: FailedEvent) -> None:
        marked.append(event)

    feed = EventsFeed(Topology(), "s", 1.0, 10, on_dead_letter=mark, outcomes=no_outcomes)
    job = chunk().model_copy(update={"tenant": "acme"})
    ordinary = Job(spec=job.spec, tenant="acme")
    for message in (dead_letter(job), dead_letter(ordinary)):
        await feed._on_dead_letter(cast(AbstractIncomingMessage, message))
    assert [e.job_id for e in marked] == [job.id, ordinary.id]  # how the parent learns it
    assert marked[0].code is FailureCode.TOO_MANY_ATTEMPTS
    assert feed.cache.get(job.id) is None  # no record anyone could `get`
    assert feed.active.count("acme") == 0
    record = feed.cache.get(ordinary.id)
    assert record is not None
    assert record.tenant == "acme"


def test_a_tenants_dead_letters_leave_chunks_out() -> None:
    job = chunk().model_copy(update={"tenant": "acme"})
    ordinary = Job(spec=job.spec, tenant="acme")
    found = [(m.body, m.headers) for m in (dead_letter(job), dead_letter(ordinary))]
    assert [r.job_id for r in attempts.dead_letter_records(found, "acme")] == [ordinary.id]
    # The operators' list (every tenant's, on the ops port) shows it: a real dead letter.
    assert [r.job_id for r in attempts.dead_letter_records(found, None)] == [job.id, ordinary.id]


class QueuePublisher:
    """The publisher's queue side: `refuse` is what publishing a job raises."""

    def __init__(self, consumers: int = 0, ready: int = 0) -> None:
        self.consumers, self.ready = consumers, ready
        self.refuse: Exception | None = None
        self.jobs: list[str] = []

    async def publish_job(self, job: Job, attempt: int, **_: Any) -> None:
        if self.refuse is not None and job.chunk is not None and job.chunk.index == 1:
            raise self.refuse
        self.jobs.append(job.id)

    async def consumer_count(self, queue_name: str) -> int:
        return self.consumers

    async def queue_depth(self, queue_name: str) -> int:
        return self.ready


@dataclass
class PoolMarkers:
    markers: JobMarkers


def rabbit_subjobs(publisher: QueuePublisher, markers: JobMarkers) -> RabbitSubJobs:
    return RabbitSubJobs(
        cast(WorkerPool, PoolMarkers(markers)),
        cast(Publisher, publisher),
        cast(Control, None),
        Topology(),
        lambda: None,
        1.0,
    )


@pytest.mark.parametrize(
    "error", [QueueFull("the job queue is full"), BackendUnavailable("publishing failed")]
)
async def test_a_refused_chunk_publish_fails_the_parent_with_resource_limit(
    tmp_path: Path, error: Exception
) -> None:
    publisher = QueuePublisher()
    publisher.refuse = error
    subjobs = rabbit_subjobs(publisher, Markers(tmp_path))
    with pytest.raises(JobFailure) as refused:
        await subjobs.submit([chunk(0), chunk(1)])
    assert refused.value.code is FailureCode.RESOURCE_LIMIT
    assert "no room for this job's chunks" in refused.value.message
    assert publisher.jobs == [chunk(0).id]


async def test_capacity_is_the_consumers_no_message_waits_for(tmp_path: Path) -> None:
    publisher = QueuePublisher(consumers=4, ready=1)
    subjobs = rabbit_subjobs(publisher, Markers(tmp_path))
    assert await subjobs.capacity() == 3
    publisher.ready = 9
    assert await subjobs.capacity() == 0  # a backlog: no idle slot, floored at 0


async def test_forget_removes_the_chunks_marker_files(tmp_path: Path) -> None:
    markers = Markers(tmp_path)
    subjobs = rabbit_subjobs(QueuePublisher(), markers)
    gone, kept = chunk(0), chunk(1)
    for job in (gone, kept):
        await markers.mark_accepted(job)
        await markers.mark_cancelled(job.id)
    (tmp_path / "escape").mkdir()
    await subjobs.forget([gone.id, "..", "../escape", "f" * 32])  # only job ids are removed
    assert await subjobs.outcome(gone.id) is None
    assert not (tmp_path / "jobs" / gone.id).exists()
    assert (tmp_path / "escape").exists()
    assert isinstance(await subjobs.outcome(kept.id), CancelledEvent)


async def test_forget_removes_the_chunks_bucket_records(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, media_root=tmp_path, storage="s3", s3_bucket="pool")
    store = MemoryObjectStore("pool")
    markers = BucketMarkers(store, settings)
    subjobs = rabbit_subjobs(QueuePublisher(), markers)
    gone, kept = chunk(0), chunk(1)
    for job in (gone, kept):
        await markers.mark_failed(FailedEvent(job_id=job.id, code=FailureCode.TIMEOUT, message="t"))
        await markers.mark_cancelled(job.id)
    await subjobs.forget([gone.id])
    assert await subjobs.outcome(gone.id) is None
    assert isinstance(await subjobs.outcome(kept.id), FailedEvent)
