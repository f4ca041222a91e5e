"""The in-memory backend's queueing logic, with a fake executor (no FFmpeg)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ffpool.backends.base import QueueFull, UnknownJob
from ffpool.backends.memory import MemoryBackend
from ffpool.domain.events import JobState
from ffpool.domain.jobs import Job, JobSpec, PathInput, ProbeOp, TrimOp
from ffpool.settings import Settings
from tests.fakes import FakeExecutor, NullMetrics, until

METRICS = NullMetrics()


def job(priority: int = 0, op: str = "trim") -> Job:
    operation = ProbeOp() if op == "probe" else TrimOp(duration=1)
    return Job(spec=JobSpec(input=PathInput(path="a.mp4"), operation=operation), priority=priority)


@pytest.fixture
async def one_slot() -> AsyncIterator[tuple[MemoryBackend, FakeExecutor]]:
    executor = FakeExecutor(hold=True)
    backend = MemoryBackend(Settings(max_concurrent_jobs=1, max_queued_jobs=5), executor, METRICS)
    await backend.start()
    yield backend, executor
    await backend.stop()


async def test_higher_priority_starts_first(one_slot: tuple[MemoryBackend, FakeExecutor]) -> None:
    backend, executor = one_slot
    blocker = job()
    await backend.submit(blocker)
    await until(lambda: executor.started == [blocker.id])
    low, high, mid = job(1), job(9), job(5)
    for j in (low, high, mid):
        await backend.submit(j)
    for expected in (blocker, high, mid, low):
        await until(lambda e=expected: e.id in executor.started)  # type: ignore[misc]
        executor.release(expected.id)
    assert executor.started == [blocker.id, high.id, mid.id, low.id]


async def test_duplicate_submission_is_not_queued_twice(
    one_slot: tuple[MemoryBackend, FakeExecutor],
) -> None:
    backend, executor = one_slot
    first = job()
    assert not (await backend.submit(first)).duplicate
    again = await backend.submit(first)
    assert again.duplicate
    assert again.record.job_id == first.id
    executor.release(first.id)
    await until(lambda: backend._records[first.id].state is JobState.COMPLETED)
    assert executor.started == [first.id]


async def test_cancel_queued_and_running(one_slot: tuple[MemoryBackend, FakeExecutor]) -> None:
    backend, executor = one_slot
    running, queued = job(), job()
    await backend.submit(running)
    await backend.submit(queued)
    await until(lambda: executor.started == [running.id])
    assert (await backend.cancel(queued.id)).state is JobState.CANCELLED
    await backend.cancel(running.id)
    await until(lambda: backend._records[running.id].state is JobState.CANCELLED)
    assert executor.cancelled == [running.id]
    assert queued.id not in executor.started
    assert METRICS.finished[-2:] == [("trim", JobState.CANCELLED)] * 2
    with pytest.raises(UnknownJob):
        await backend.cancel("0" * 32)


async def test_queue_limit_refuses_new_jobs(one_slot: tuple[MemoryBackend, FakeExecutor]) -> None:
    backend, executor = one_slot
    await backend.submit(job())
    await until(lambda: len(executor.started) == 1)
    for _ in range(5):
        await backend.submit(job())
    with pytest.raises(QueueFull):
        await backend.submit(job())
    stats = await backend.stats()
    assert (stats.active_jobs, stats.queued_jobs, stats.total_jobs) == (1, 5, 6)


async def test_failed_jobs_are_dead_letters(one_slot: tuple[MemoryBackend, FakeExecutor]) -> None:
    backend, executor = one_slot
    bad = job(op="probe")
    await backend.submit(bad)
    executor.release(bad.id)
    await until(lambda: backend._records[bad.id].state is JobState.FAILED)
    dead = await backend.dead_letters()
    assert [r.job_id for r in dead] == [bad.id]
    assert dead[0].failure is not None
    assert dead[0].failure.code == "invalid_media"


async def test_subscriber_sees_events_to_the_end(
    one_slot: tuple[MemoryBackend, FakeExecutor],
) -> None:
    backend, executor = one_slot
    j = job()
    async with backend.subscribe(j.id) as sub:
        await backend.submit(j)
        executor.release(j.id)
        types = [event.type async for event in sub]
    assert types == ["state", "progress", "completed"]


async def test_retention_forgets_finished_jobs_only() -> None:
    executor = FakeExecutor()
    settings = Settings(max_concurrent_jobs=1, job_retention_seconds=10, max_retained_jobs=2)
    backend = MemoryBackend(settings, executor, NullMetrics())
    await backend.start()
    try:
        done = [job() for _ in range(3)]
        for j in done:
            await backend.submit(j)
        await until(lambda: all(backend._records[j.id].state.terminal for j in done))
        # Over the count limit: the oldest finished job goes at once.
        assert backend.forget_expired(0.0) == [done[0].id]
        finished_at = backend._records[done[2].id].finished_at
        assert finished_at is not None
        assert set(backend.forget_expired(finished_at.timestamp() + 11)) == {
            done[1].id,
            done[2].id,
        }
        assert await backend.get(done[2].id) is None
    finally:
        await backend.stop()


async def test_sweeper_removes_forgotten_jobs_files() -> None:
    removed: list[str] = []
    settings = Settings(max_concurrent_jobs=1, job_retention_seconds=0)
    backend = MemoryBackend(settings, FakeExecutor(), NullMetrics(), removed.append)
    await backend.start()
    try:
        j = job()
        await backend.submit(j)
        await until(lambda: removed == [j.id], timeout=5)
        assert await backend.get(j.id) is None
    finally:
        await backend.stop()
