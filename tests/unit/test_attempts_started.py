"""Quorum attempts are runs that started (attempts.py, docs/rabbitmq.md "Quorum queues"): a worker
records the attempt in the job's markers before it runs, reads it back on a delivery that may
have run before, so a return that never ran (x-delivery-count) costs nothing; a drain's
hand-back lowers the record before its copy exists; classic mode writes no such record."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from ffpool import names
from ffpool.backends.rabbitmq.job_run import Run
from ffpool.backends.rabbitmq.markers import Markers
from ffpool.backends.rabbitmq.outbox import Outbox
from ffpool.backends.rabbitmq.publisher import Publisher
from ffpool.backends.rabbitmq.runs import RunLedger
from ffpool.backends.rabbitmq.settler import Settler
from ffpool.backends.rabbitmq.worker_pool import WorkerPool
from ffpool.domain.jobs import Job, JobSpec, PathInput, ProbeOp
from ffpool.settings import Settings
from ffpool.topology import Topology
from tests.fakes import (
    FakeConnection,
    FakeDelivery,
    FakeExecutor,
    FakeMetrics,
    FakePublisher,
    no_lookup,
    worker_pool,
)
from tests.polling import eventually


class QuorumPublisher(FakePublisher):
    """Records each republished attempt with the job's started record at that moment, and
    each dead letter's headers."""

    quorum = True

    def __init__(self, markers: Markers) -> None:
        super().__init__()
        self.markers = markers
        self.republished: list[tuple[int, int]] = []  # (attempt, started when published)
        self.dead: list[dict[str, Any]] = []

    async def publish_job(self, job: Job, attempt: int, **_: Any) -> None:
        self.republished.append((attempt, await self.markers.started(job.id)))
        await super().publish_job(job, attempt)

    async def publish_dead_letter(self, body: bytes, headers: dict[str, Any]) -> None:
        self.dead.append(headers)


def new_job() -> Job:
    return Job(spec=JobSpec(input=PathInput(path="in.mp4"), operation=ProbeOp()))


def delivery(job: Job, attempt: int = 1, count: int = 0, redelivered: bool = False) -> FakeDelivery:
    out = FakeDelivery(job)
    out.headers = {names.HEADER_ATTEMPT: attempt, names.HEADER_DELIVERY_COUNT: count}
    out.redelivered = redelivered
    return out


async def quorum_pool(
    tmp_path: Path, max_attempts: int, *, hold: bool = False
) -> tuple[WorkerPool, QuorumPublisher, FakeExecutor, Any]:
    """A started quorum pool with one slot (one band: classic-style consumers on fakes)."""
    settings = Settings(
        backend="rabbitmq",
        media_root=tmp_path,
        instance_name="w",
        broker_timeout_seconds=2,
        queue_type="quorum",
        queue_priority_bands=1,
        max_attempts=max_attempts,
    )
    markers = Markers(tmp_path)
    pub, executor = QuorumPublisher(markers), FakeExecutor(hold=hold)
    pool = WorkerPool(
        settings,
        Topology.from_settings(settings),
        cast(Publisher, pub),
        executor,
        FakeMetrics(),
        markers=markers,
        ledger=RunLedger(),
        lookup=no_lookup,
    )
    conn = FakeConnection()
    await pool.start(cast(AbstractRobustConnection, conn), 1)
    return pool, pub, executor, conn.consumer("")


async def until_settled(message: FakeDelivery) -> None:
    await eventually(lambda: bool(message.settled), timeout=5, what="the delivery settled")


async def test_returns_that_never_ran_cost_no_attempt(tmp_path: Path) -> None:
    """MAX_ATTEMPTS 1: a delivery the broker returned 7 times (cancelled consumers, lost
    prefetches) without a run still runs, as attempt 1 (before: attempt 8, poison)."""
    pool, pub, executor, slot = await quorum_pool(tmp_path, 1)
    job = new_job()
    message = delivery(job, count=7, redelivered=True)
    await slot(message)
    await until_settled(message)
    assert executor.started == [job.id]
    assert message.settled == ["ack"]
    assert pub.dead == []
    assert await pool.markers.started(job.id) == 1  # recorded before the run


async def test_a_started_run_that_was_lost_counts(tmp_path: Path) -> None:
    """Attempt 1 started (recorded) and was lost: its redelivery is attempt 2, past
    MAX_ATTEMPTS 1, dead-lettered by the worker, never run."""
    pool, pub, executor, slot = await quorum_pool(tmp_path, 1)
    job = new_job()
    await pool.markers.mark_started(job.id, 1)
    message = delivery(job, count=1, redelivered=True)
    await slot(message)
    await until_settled(message)
    assert executor.started == []
    ((dead),) = pub.dead
    assert dead[names.HEADER_FAILURE_CODE] == "too_many_attempts"
    assert dead[names.HEADER_ATTEMPT] == 2
    # With room for it, the same delivery runs as attempt 2.
    pool, pub, executor, slot = await quorum_pool(tmp_path, 2)
    again = delivery(job, count=1, redelivered=True)
    await slot(again)
    await until_settled(again)
    assert executor.started == [job.id]
    assert await pool.markers.started(job.id) == 2


async def test_a_fresh_delivery_does_not_read_the_record(tmp_path: Path) -> None:
    """The hot path: a first delivery (count 0, not redelivered, not republished) runs as its
    header says, whatever a stale record holds."""
    pool, _, executor, slot = await quorum_pool(tmp_path, 1)
    job = new_job()
    await pool.markers.mark_started(job.id, 5)
    message = delivery(job)
    await slot(message)
    await until_settled(message)
    assert executor.started == [job.id]
    assert await pool.markers.started(job.id) == 1


async def test_a_drain_lowers_the_record_before_the_copy_exists(tmp_path: Path) -> None:
    """Attempt 2 runs (1 was lost) and is handed back by a drain: the record goes back to 1
    before the copy is published with header 2, so the copy is attempt 2 again."""
    pool, pub, executor, slot = await quorum_pool(tmp_path, 2, hold=True)
    job = new_job()
    await pool.markers.mark_started(job.id, 1)
    message = delivery(job, count=1, redelivered=True)
    await slot(message)
    await eventually(lambda: executor.started == [job.id], timeout=5, what="the run")
    assert await pool.markers.started(job.id) == 2
    await pool.drain(0)
    assert pub.republished == [(2, 1)]
    assert message.settled == ["ack"]


async def test_a_delivery_taken_while_draining_leaves_the_record(tmp_path: Path) -> None:
    """A hand-back of a delivery that never ran here lowers nothing: the record of an earlier
    lost run (1) must survive it."""
    pool, pub, _, slot = await quorum_pool(tmp_path, 2)
    job = new_job()
    await pool.markers.mark_started(job.id, 1)
    await pool.drain(0)
    message = delivery(job, count=1, redelivered=True)
    await slot(message)
    await until_settled(message)
    assert pub.republished == [(1, 1)]
    assert await pool.markers.started(job.id) == 1


class FailingMarkers(Markers):
    async def mark_started(self, job_id: str, attempt: int) -> bool:
        raise OSError("disk gone")


async def test_a_start_that_cannot_be_recorded_still_runs(tmp_path: Path) -> None:
    pub = QuorumPublisher(Markers(tmp_path))
    settler = Settler(
        cast(Publisher, pub), FailingMarkers(tmp_path), 1.0, Outbox(pub.publish_events)
    )
    job = new_job()
    run = Run(job, 1, "w/0", cast(list[AbstractIncomingMessage], [FakeDelivery(job)]))
    await settler.started(run)  # logged, not raised
    await settler.hand_back(run, ran=True)
    assert pub.republished == [(1, 0)]


async def test_classic_mode_writes_no_started_record(tmp_path: Path) -> None:
    publisher, executor = FakePublisher(), FakeExecutor()
    pool = worker_pool(tmp_path, publisher, executor)
    conn = FakeConnection()
    await pool.start(cast(AbstractRobustConnection, conn), 1)
    job = new_job()
    message = FakeDelivery(job)
    await conn.consumer("")(message)
    await until_settled(message)
    await asyncio.sleep(0)
    assert executor.started == [job.id]
    assert await pool.markers.started(job.id) == 0
