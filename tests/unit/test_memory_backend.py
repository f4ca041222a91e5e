"""The in-memory backend's queueing logic, with a fake executor (no FFmpeg)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from operator import contains

import pytest

from ffpool.backends.base import QueueFull, UnknownJob
from ffpool.backends.memory import MemoryBackend
from ffpool.domain.events import JobState
from ffpool.domain.jobs import Job, JobSpec, PathInput, TrimOp
from ffpool.settings import Settings
from tests.fakes import FakeExecutor, FakeMetrics
from tests.polling import eventually

METRICS = FakeMetrics()


def job(priority: int = 0, path: str = "a.mp4") -> Job:
    """A trim job; the fake executor fails it when `path` is "fail"."""
    return Job(
        spec=JobSpec(input=PathInput(path=path), operation=TrimOp(duration=1)), priority=priority
    )


async def state_is(backend: MemoryBackend, job_id: str, state: JobState) -> bool:
    record = await backend.get(job_id)
    return record is not None and record.state is state


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
    await eventually(lambda: executor.started == [blocker.id], timeout=10, what="the blocker")
    low, high, mid = job(1), job(9), job(5)
    for j in (low, high, mid):
        await backend.submit(j)
    for expected in (blocker, high, mid, low):
        await eventually(
            partial(contains, executor.started, expected.id),
            timeout=10,
            what=f"{expected.id} started",
        )
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
    await eventually(
        partial(state_is, backend, first.id, JobState.COMPLETED), timeout=10, what="first completed"
    )
    assert executor.started == [first.id]


async def test_cancel_queued_and_running(one_slot: tuple[MemoryBackend, FakeExecutor]) -> None:
    backend, executor = one_slot
    running, queued = job(), job()
    await backend.submit(running)
    await backend.submit(queued)
    await eventually(lambda: executor.started == [running.id], timeout=10, what="the run")
    assert (await backend.cancel(queued.id)).state is JobState.CANCELLED
    await backend.cancel(running.id)
    await eventually(
        partial(state_is, backend, running.id, JobState.CANCELLED),
        timeout=10,
        what="running cancelled",
    )
    assert executor.cancelled == [running.id]
    assert queued.id not in executor.started
    assert METRICS.finished[-2:] == [("trim", JobState.CANCELLED)] * 2
    with pytest.raises(UnknownJob):
        await backend.cancel("0" * 32)


async def test_queue_limit_refuses_new_jobs(one_slot: tuple[MemoryBackend, FakeExecutor]) -> None:
    backend, executor = one_slot
    await backend.submit(job())
    await eventually(lambda: len(executor.started) == 1, timeout=10, what="the first run")
    for _ in range(5):
        await backend.submit(job())
    with pytest.raises(QueueFull):
        await backend.submit(job())
    stats = await backend.stats()
    assert (stats.active_jobs, stats.queued_jobs, stats.total_jobs) == (1, 5, 6)


async def test_failed_jobs_are_dead_letters(one_slot: tuple[MemoryBackend, FakeExecutor]) -> None:
    backend, executor = one_slot
    bad = job(path="fail")
    await backend.submit(bad)
    executor.release(bad.id)
    await eventually(
        partial(state_is, backend, bad.id, JobState.FAILED), timeout=10, what="bad failed"
    )
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


async def idle(backend: MemoryBackend) -> bool:
    """Nothing queued or running: every job submitted so far has its outcome."""
    stats = await backend.stats()
    return stats.active_jobs == 0 and stats.queued_jobs == 0


async def test_retention_forgets_finished_jobs_only() -> None:
    executor = FakeExecutor()
    settings = Settings(max_concurrent_jobs=1, job_retention_seconds=10, max_retained_jobs=2)
    backend = MemoryBackend(settings, executor, FakeMetrics())
    await backend.start()
    try:
        done = [job() for _ in range(3)]
        for j in done:
            await backend.submit(j)
        await eventually(lambda: idle(backend), timeout=10, what="all three finished")
        # Over the count limit: the oldest finished job goes at once.
        assert backend.forget_expired(0.0) == [done[0].id]
        last = await backend.get(done[2].id)
        assert last is not None
        finished_at = last.finished_at
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
    backend = MemoryBackend(settings, FakeExecutor(), FakeMetrics(), removed.append)
    await backend.start()
    try:
        j = job()
        await backend.submit(j)
        await eventually(lambda: removed == [j.id], timeout=5, what="the files removed")
        assert await backend.get(j.id) is None
    finally:
        await backend.stop()
