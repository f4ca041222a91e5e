"""A parent's wait for its chunks, against a fake SubJobs: outcomes, progress, failures,
time, and what a stopped parent does to its chunks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest

from ffpool.chunks import waiting
from ffpool.chunks.coordinator import Split, sub_job
from ffpool.chunks.plan import ChunkPlan, Cut
from ffpool.chunks.progress import ChunkProgress
from ffpool.chunks.subjobs import SubOutcome
from ffpool.chunks.tools import Lending
from ffpool.domain.events import (
    CancelledEvent,
    CompletedEvent,
    FailedEvent,
    FailureCode,
    ProgressEvent,
)
from ffpool.domain.jobs import Job, JobSpec, chunk_job_id
from ffpool.ffmpeg.outcome import JobFailure
from tests.polling import eventually

SPEC = JobSpec.model_validate(
    {
        "input": {"kind": "path", "path": "a.mp4"},
        "operation": {"op": "transcode", "chunking": {"chunk_seconds": 2.0}},
    }
)


def plan(count: int, each: float = 2.0) -> ChunkPlan:
    cuts = tuple(
        Cut(index=i, start_s=i * each, duration_s=each, packet=i * 50) for i in range(count)
    )
    return ChunkPlan(cuts=cuts, duration_s=count * each)


class FakeSubJobs:
    def __init__(self) -> None:
        self.outcomes: dict[str, SubOutcome] = {}
        self.cancelled: list[str] = []
        self.lent = 0
        self.watching: Callable[[ProgressEvent], None] | None = None

    async def submit(self, jobs: Sequence[Job]) -> None:
        return None

    async def outcome(self, job_id: str) -> SubOutcome | None:
        return self.outcomes.get(job_id)

    @contextlib.asynccontextmanager
    async def watch(
        self, parent_id: str, on_progress: Callable[[ProgressEvent], None]
    ) -> AsyncIterator[None]:
        self.watching = on_progress
        yield
        self.watching = None

    async def cancel(self, job_ids: Sequence[str]) -> None:
        self.cancelled.extend(job_ids)

    @contextlib.asynccontextmanager
    async def lend_slot(self) -> AsyncIterator[None]:
        self.lent += 1
        try:
            yield
        finally:
            self.lent -= 1

    async def capacity(self) -> int:
        return 2

    async def forget(self, job_ids: Sequence[str]) -> None:
        return None


def done(job_id: str) -> CompletedEvent:
    return CompletedEvent(job_id=job_id, processing_time_s=1.0)


def forever() -> float:
    return 100.0


async def start_wait(
    subs: FakeSubJobs, parent: Job, chunks: ChunkPlan, seen: list[ProgressEvent], **kw: Any
) -> asyncio.Task[None]:
    return asyncio.create_task(
        waiting.wait_for_chunks(
            subs,
            parent,
            chunks,
            "",
            seen.append,
            kw.pop("remaining", forever),
            kw.pop("lending", Lending(1)),
            0.01,
            **kw,
        )
    )


async def test_waits_for_every_chunk_with_the_slot_lent_and_folds_progress() -> None:
    subs, parent, seen = FakeSubJobs(), Job(spec=SPEC), []
    ids = [chunk_job_id(parent.id, i) for i in range(3)]
    task = await start_wait(subs, parent, plan(3), seen)
    await eventually(lambda: subs.lent == 1 and subs.watching is not None, timeout=5, what="lent")
    assert subs.watching is not None
    subs.watching(ProgressEvent(job_id=ids[1], out_time_s=1.0))
    subs.outcomes[ids[0]] = done(ids[0])
    await eventually(lambda: any(e.out_time_s == 3.0 for e in seen), timeout=5, what="3 s")
    assert not task.done()
    subs.outcomes.update({i: done(i) for i in ids})
    await asyncio.wait_for(task, 5)
    assert subs.lent == 0
    assert seen[-1].out_time_s == 6.0
    assert seen[-1].percent == pytest.approx(98.0)
    assert all(e.job_id == parent.id for e in seen)


async def test_a_failed_chunk_fails_the_parent_and_cancels_the_rest() -> None:
    subs, parent = FakeSubJobs(), Job(spec=SPEC)
    ids = [chunk_job_id(parent.id, i) for i in range(3)]
    subs.outcomes[ids[1]] = FailedEvent(
        job_id=ids[1], code=FailureCode.TOO_MANY_ATTEMPTS, message="gave up"
    )
    task = await start_wait(subs, parent, plan(3), [])
    with pytest.raises(JobFailure) as failure:
        await asyncio.wait_for(task, 5)
    assert failure.value.code is FailureCode.TOO_MANY_ATTEMPTS
    assert "chunk 2 of 3" in failure.value.message
    assert sorted(subs.cancelled) == sorted([ids[0], ids[2]])


async def test_a_cancelled_chunk_fails_the_parent() -> None:
    subs, parent = FakeSubJobs(), Job(spec=SPEC)
    first = chunk_job_id(parent.id, 0)
    subs.outcomes[first] = CancelledEvent(job_id=first)
    with pytest.raises(JobFailure, match="chunk 1 of 2 was cancelled"):
        await asyncio.wait_for(await start_wait(subs, parent, plan(2), []), 5)


async def test_the_parents_time_limit_cancels_its_chunks() -> None:
    subs, parent = FakeSubJobs(), Job(spec=SPEC)

    def out_of_time() -> float:
        raise JobFailure(FailureCode.TIMEOUT, "the job ran out of its time limit")

    task = await start_wait(subs, parent, plan(2), [], remaining=out_of_time)
    with pytest.raises(JobFailure, match="time limit"):
        await asyncio.wait_for(task, 5)
    assert len(subs.cancelled) == 2


async def test_a_stopped_parent_cancels_its_chunks_only_once_its_cancel_is_recorded() -> None:
    subs, parent = FakeSubJobs(), Job(spec=SPEC)
    ids = [chunk_job_id(parent.id, i) for i in range(2)]
    removed: list[bool] = []

    async def remove() -> None:
        removed.append(True)

    watcher = asyncio.create_task(waiting.cancel_if_parent_ended(subs, parent.id, ids, remove))
    # A hand-back (no outcome recorded) leaves the chunks to the next run ...
    await asyncio.sleep(0.05)
    assert subs.cancelled == []
    # ... a client's cancel, once recorded, takes them and their files.
    subs.outcomes[parent.id] = CancelledEvent(job_id=parent.id)
    await asyncio.wait_for(watcher, 5)
    assert subs.cancelled == ids
    assert removed == [True]


def test_progress_counts_each_chunk_up_to_its_own_length() -> None:
    a, b, other = "a" * 32, "b" * 32, "c" * 32
    progress = ChunkProgress("f" * 32, {a: 2.0, b: 3.0}, 5.0)
    assert progress.update(ProgressEvent(job_id=other, out_time_s=1.0)) is False
    assert progress.update(ProgressEvent(job_id=a, out_time_s=9.0)) is True
    assert progress.update(ProgressEvent(job_id=a, out_time_s=1.0)) is False  # never back
    assert progress.encoded_s == 2.0
    assert progress.done(b)
    assert progress.encoded_s == 5.0
    assert progress.event(elapsed_s=1.0).percent == pytest.approx(98.0)


def test_a_sub_job_carries_its_parents_spec_and_tenant_and_goes_first() -> None:
    parent = Job(spec=SPEC, priority=2, tenant="acme")
    split = Split(id="0123456789abcdef", plan=plan(3))
    job = sub_job(parent, split, 2)
    assert job.id == chunk_job_id(parent.id, 2, split.id) == split.chunk_ids(parent.id)[2]
    assert job.id != chunk_job_id(parent.id, 2)  # another split's chunk 2 is another job
    assert (job.spec, job.tenant) == (parent.spec, "acme")
    assert job.priority == 9  # a started parent finishes before another starts
    assert job.chunk is not None
    assert (job.chunk.parent, job.chunk.index, job.chunk.count) == (parent.id, 2, 3)
    assert (job.chunk.start_s, job.chunk.duration_s) == (4.0, 2.0)


async def test_a_process_lends_at_most_its_own_slot_count() -> None:
    subs, lending = FakeSubJobs(), Lending(1)
    parents = [Job(spec=SPEC), Job(spec=SPEC)]
    tasks = [await start_wait(subs, p, plan(1), [], lending=lending) for p in parents]
    await eventually(lambda: lending.lent == 1, timeout=5, what="one lent")
    await asyncio.sleep(0.05)
    assert subs.lent == 1  # the second waiting parent keeps its slot
    subs.outcomes.update({chunk_job_id(p.id, 0): done(chunk_job_id(p.id, 0)) for p in parents})
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert (subs.lent, lending.lent) == (0, 0)
