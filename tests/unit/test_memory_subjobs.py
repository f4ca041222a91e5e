"""Chunk sub-jobs on the memory backend (backends/memory_subjobs.py), with a fake executor."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ffpool.backends.base import QueueFull
from ffpool.backends.memory import MemoryBackend
from ffpool.chunks.subjobs import SubJobs
from ffpool.domain.events import (
    CancelledEvent,
    CompletedEvent,
    FailedEvent,
    FailureCode,
    JobState,
    ProgressEvent,
)
from ffpool.domain.jobs import ChunkTask, Job, JobSpec, PathInput, TrimOp, chunk_job_id
from ffpool.ffmpeg.outcome import JobFailure
from ffpool.settings import Settings
from tests.fakes import FakeExecutor, FakeMetrics
from tests.polling import eventually


def parent_job(path: str = "a.mp4", tenant: str = "acme") -> Job:
    return Job(
        spec=JobSpec(input=PathInput(path=path), operation=TrimOp(duration=1)),
        priority=3,
        tenant=tenant,
    )


def chunks_of(parent: Job, count: int, path: str = "a.mp4") -> list[Job]:
    """`path` steers the fake executor ("block" waits for a release, "fail" fails)."""
    spec = parent.spec.model_copy(update={"input": PathInput(path=path)})
    return [
        Job(
            id=chunk_job_id(parent.id, i),
            spec=spec,
            priority=parent.priority,
            tenant=parent.tenant,
            chunk=ChunkTask(
                parent=parent.id, index=i, count=count, start_s=2.0 * i, duration_s=2.0
            ),
        )
        for i in range(count)
    ]


@pytest.fixture
async def pool() -> AsyncIterator[tuple[MemoryBackend, SubJobs, FakeExecutor]]:
    executor = FakeExecutor()
    settings = Settings(max_concurrent_jobs=1, max_queued_jobs=1)
    backend = MemoryBackend(settings, executor, FakeMetrics())
    await backend.start()
    yield backend, backend.subjobs(), executor
    await backend.stop()


async def done(subjobs: SubJobs, job_id: str) -> object:
    return await subjobs.outcome(job_id)


async def test_chunks_run_and_report_their_outcome(
    pool: tuple[MemoryBackend, SubJobs, FakeExecutor],
) -> None:
    _backend, subjobs, executor = pool
    parent = parent_job()
    ok, bad = chunks_of(parent, 2)[0], chunks_of(parent, 2, path="fail")[1]
    # Past the queue limit (1): chunk jobs are not the client's submits.
    await subjobs.submit([ok, bad])
    await subjobs.submit([ok])  # queued again: harmless
    assert isinstance(
        await eventually(lambda: done(subjobs, ok.id), timeout=5, what="ok"), CompletedEvent
    )
    failed = await eventually(lambda: done(subjobs, bad.id), timeout=5, what="bad")
    assert isinstance(failed, FailedEvent)
    assert executor.started == [ok.id, bad.id]


async def test_chunks_are_invisible_to_clients(
    pool: tuple[MemoryBackend, SubJobs, FakeExecutor],
) -> None:
    backend, subjobs, _ = pool
    parent = parent_job(path="block")
    (chunk,) = chunks_of(parent, 1, path="block")
    await subjobs.submit([chunk])
    async with backend.subscribe(chunk.id) as sub:
        await eventually(lambda: backend.busy_jobs() == 1, timeout=5, what="the chunk running")
        assert await backend.get(chunk.id) is None
        assert await backend.active_jobs("acme") == 0
        assert backend.tenant_of(chunk.id) is None
        assert sub.pending() == []
    await subjobs.cancel([chunk.id])
    await eventually(lambda: done(subjobs, chunk.id), timeout=5, what="the cancel")
    assert await backend.dead_letters() == []
    assert (await backend.stats()).total_jobs == 0


async def test_watch_gets_the_parents_chunks_progress(
    pool: tuple[MemoryBackend, SubJobs, FakeExecutor],
) -> None:
    _, subjobs, _ = pool
    parent, other = parent_job(), parent_job()
    seen: list[ProgressEvent] = []
    async with subjobs.watch(parent.id, seen.append):
        await subjobs.submit(chunks_of(parent, 2) + chunks_of(other, 1))
        for chunk in chunks_of(other, 1) + chunks_of(parent, 2):
            await eventually(lambda c=chunk: done(subjobs, c.id), timeout=5, what="chunks")
    assert sorted(e.job_id for e in seen) == sorted(c.id for c in chunks_of(parent, 2))
    (late,) = chunks_of(parent_job(), 1)
    await subjobs.submit([late])
    await eventually(lambda: done(subjobs, late.id), timeout=5, what="unwatched chunk")
    assert len(seen) == 2


async def test_cancel_queued_and_running_chunks(
    pool: tuple[MemoryBackend, SubJobs, FakeExecutor],
) -> None:
    _backend, subjobs, executor = pool
    running, queued = chunks_of(parent_job(), 2, path="block")
    await subjobs.submit([running, queued])
    await eventually(lambda: executor.started == [running.id], timeout=5, what="first chunk")
    await subjobs.cancel([queued.id, running.id, "f" * 32])  # an unknown id: ignored
    for chunk in (running, queued):
        outcome = await eventually(lambda c=chunk: done(subjobs, c.id), timeout=5, what="cancel")
        assert isinstance(outcome, CancelledEvent)
    assert executor.cancelled == [running.id]
    assert executor.started == [running.id]  # the queued one never ran


async def test_a_lent_slot_runs_one_job_more_then_stops_taking(
    pool: tuple[MemoryBackend, SubJobs, FakeExecutor],
) -> None:
    backend, subjobs, executor = pool
    first, second, third = chunks_of(parent_job(), 3, path="block")
    await subjobs.submit([first, second])
    await eventually(lambda: executor.started == [first.id], timeout=5, what="one slot busy")
    async with subjobs.lend_slot():
        await eventually(lambda: len(executor.started) == 2, timeout=5, what="the lent slot")
        assert backend.busy_jobs() == 2
    # The lent slot's job runs to its end after the exit.
    executor.release(second.id)
    await eventually(lambda: done(subjobs, second.id), timeout=5, what="the lent job")
    await subjobs.submit([third])
    await eventually(lambda: backend.busy_jobs() == 1, timeout=5, what="one slot only")
    assert executor.started == [first.id, second.id]  # no third worker took it
    executor.release()
    await eventually(lambda: done(subjobs, third.id), timeout=5, what="the third chunk")


async def test_an_idle_lent_slot_stops_at_exit(
    pool: tuple[MemoryBackend, SubJobs, FakeExecutor],
) -> None:
    _backend, subjobs, executor = pool
    async with subjobs.lend_slot():
        pass
    first, second = chunks_of(parent_job(), 2, path="block")
    await subjobs.submit([first, second])
    await eventually(lambda: executor.started == [first.id], timeout=5, what="one slot")
    executor.release(first.id)
    await eventually(lambda: executor.started == [first.id, second.id], timeout=5, what="next")
    executor.release()


async def test_an_orphan_chunk_is_not_run(
    pool: tuple[MemoryBackend, SubJobs, FakeExecutor],
) -> None:
    backend, subjobs, executor = pool
    parent = parent_job(path="fail")
    await backend.submit(parent)
    await eventually(lambda: backend.get(parent.id), timeout=5, what="the parent")

    async def parent_failed() -> bool:
        record = await backend.get(parent.id)
        return record is not None and record.state is JobState.FAILED

    await eventually(parent_failed, timeout=5, what="the parent failing")
    (orphan,) = chunks_of(parent, 1)
    await subjobs.submit([orphan])
    outcome = await eventually(lambda: done(subjobs, orphan.id), timeout=5, what="orphan")
    assert isinstance(outcome, CancelledEvent)
    assert orphan.id not in executor.started


async def test_queued_chunks_count_against_no_clients_limit(
    pool: tuple[MemoryBackend, SubJobs, FakeExecutor],
) -> None:
    backend, subjobs, executor = pool
    running, *waiting = chunks_of(parent_job(), 4, path="block")
    await subjobs.submit([running, *waiting])
    await eventually(lambda: executor.started == [running.id], timeout=5, what="one running")
    assert (await backend.stats()).queued_jobs == 0  # the 3 queued chunks are no one's
    client = parent_job(path="b.mp4", tenant="other")
    await backend.submit(client)  # the limit is 1 queued job: the chunks take none of it
    assert (await backend.stats()).queued_jobs == 1
    with pytest.raises(QueueFull):
        await backend.submit(parent_job(tenant="other"))
    await subjobs.cancel([c.id for c in waiting])
    executor.release()
    await eventually(lambda: backend.busy_jobs() == 0, timeout=5, what="all done")


async def test_capacity_is_the_idle_slots_and_the_callers_own(
    pool: tuple[MemoryBackend, SubJobs, FakeExecutor],
) -> None:
    _backend, subjobs, executor = pool
    assert await subjobs.capacity() == 2  # one idle slot, plus the caller's (no caller here)
    first, second = chunks_of(parent_job(), 2, path="block")
    await subjobs.submit([first])
    await eventually(lambda: executor.started == [first.id], timeout=5, what="slot busy")
    assert await subjobs.capacity() == 1  # the caller's slot only: no split in auto mode
    await subjobs.submit([second])
    assert await subjobs.capacity() == 0  # a job waits: floored at 0
    async with subjobs.lend_slot():
        await eventually(lambda: len(executor.started) == 2, timeout=5, what="the lent slot")
        assert await subjobs.capacity() == 1  # lent and busy
    executor.release()


async def test_a_backend_refusing_chunks_fails_the_parent_with_resource_limit(
    pool: tuple[MemoryBackend, SubJobs, FakeExecutor],
) -> None:
    backend, subjobs, _ = pool
    await backend.drain(0)
    with pytest.raises(JobFailure) as refused:
        await subjobs.submit(chunks_of(parent_job(), 1))
    assert refused.value.code is FailureCode.RESOURCE_LIMIT
    assert "no room for this job's chunks" in refused.value.message


async def test_forget_drops_the_chunks_records(
    pool: tuple[MemoryBackend, SubJobs, FakeExecutor],
) -> None:
    _backend, subjobs, _ = pool
    done_chunk, other = chunks_of(parent_job(), 2)
    await subjobs.submit([done_chunk, other])
    for chunk in (done_chunk, other):
        await eventually(lambda c=chunk: done(subjobs, c.id), timeout=5, what="chunks done")
    await subjobs.forget([done_chunk.id, "f" * 32])  # an unknown id: ignored
    assert await subjobs.outcome(done_chunk.id) is None
    assert isinstance(await subjobs.outcome(other.id), CompletedEvent)
