"""Job state records in the pool's bucket (bucket_markers.py): the marker files' semantics
(markers.py) over the in-memory object store."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from ffpool.backends.rabbitmq import backend as rabbit_backend
from ffpool.backends.rabbitmq.bucket_markers import MAX_CONCURRENT_READS, BucketMarkers
from ffpool.backends.rabbitmq.markers import JobMarkers, Markers
from ffpool.domain.events import (
    CancelledEvent,
    CompletedEvent,
    FailedEvent,
    FailureCode,
    JobState,
)
from ffpool.domain.jobs import Job, JobSpec, PathInput, ProbeOp
from ffpool.settings import Settings
from ffpool.storage.memory_objects import MemoryObjectStore
from ffpool.storage.objects import ObjectRef

POOL = "pool-bucket"
JOB = "b" * 32


def settings(tmp_path: Path, **extra: Any) -> Settings:
    fields: dict[str, Any] = {"media_root": tmp_path, "storage": "s3", "s3_bucket": POOL}
    return Settings(_env_file=None, **{**fields, **extra})


def markers(tmp_path: Path) -> tuple[BucketMarkers, MemoryObjectStore]:
    store = MemoryObjectStore(POOL)
    return BucketMarkers(store, settings(tmp_path)), store


def _job() -> Job:
    return Job(spec=JobSpec(input=PathInput(path="a.mp4"), operation=ProbeOp()), priority=3)


async def test_round_trip_and_layout(tmp_path: Path) -> None:
    bucket, store = markers(tmp_path)
    assert await bucket.check(JOB) == (None, False)
    done = CompletedEvent(job_id=JOB, processing_time_s=2.0)
    await bucket.mark_completed(done)
    await bucket.mark_cancelled(JOB)
    assert await bucket.check(JOB) == (done, True)
    assert await bucket.completed(JOB) == done
    assert sorted(store.objects(POOL)) == [
        f"ffpool/jobs/{JOB}/cancelled",
        f"ffpool/jobs/{JOB}/completed.json",
    ]


async def test_the_first_completed_record_stays(tmp_path: Path) -> None:
    """The executor's commit creates completed.json; the settler's later write of the same
    job never replaces it (the first commit wins, as link(2) does for the files)."""
    bucket, _ = markers(tmp_path)
    first = CompletedEvent(job_id=JOB, processing_time_s=1.0)
    await bucket.mark_completed(first)
    await bucket.mark_completed(CompletedEvent(job_id=JOB, processing_time_s=9.0))
    assert await bucket.completed(JOB) == first


async def test_record_from_the_objects(tmp_path: Path) -> None:
    bucket, _ = markers(tmp_path)
    job = _job()
    assert await bucket.record(job.id) is None
    await bucket.mark_accepted(job)
    record = await bucket.record(job.id)
    assert record is not None
    assert (record.state, record.operation, record.priority) == (JobState.QUEUED, "probe", 3)
    await bucket.mark_failed(FailedEvent(job_id=job.id, code=FailureCode.TIMEOUT, message="t"))
    record = await bucket.record(job.id)
    assert record is not None
    assert record.state is JobState.FAILED
    # The commit wins over a cancel that raced it.
    await bucket.mark_cancelled(job.id)
    await bucket.mark_completed(CompletedEvent(job_id=job.id, processing_time_s=1.0))
    record = await bucket.record(job.id)
    assert record is not None
    assert record.state is JobState.COMPLETED


async def test_outcomes_prefer_the_commit_and_skip_jobs_without_one(tmp_path: Path) -> None:
    bucket, _ = markers(tmp_path)
    done = CompletedEvent(job_id=JOB, processing_time_s=1.0)
    await bucket.mark_completed(done)
    await bucket.mark_cancelled(JOB)
    failed = FailedEvent(job_id="d" * 32, code=FailureCode.FFMPEG_ERROR, message="bad")
    await bucket.mark_failed(failed)
    await bucket.mark_cancelled("f" * 32)
    found = await bucket.outcomes([JOB, "d" * 32, "e" * 32, "../x", "f" * 32])
    assert found[:2] == [done, failed]
    assert isinstance(found[2], CancelledEvent)
    assert found[2].job_id == "f" * 32
    assert len(found) == 3


async def test_unsafe_job_ids_never_become_keys(tmp_path: Path) -> None:
    bucket, store = markers(tmp_path)
    await bucket.mark_cancelled("../x")
    await bucket.mark_accepted(_job().model_copy(update={"id": "a/../../b"}))
    assert store.objects(POOL) == {}
    assert await bucket.record("../x") is None


async def test_an_outage_is_best_effort(tmp_path: Path) -> None:
    """Writes are dropped and reads find nothing, as with the files: never an exception."""
    bucket, store = markers(tmp_path)
    await bucket.mark_cancelled(JOB)
    store.outage = True
    await bucket.mark_completed(CompletedEvent(job_id=JOB, processing_time_s=1.0))
    assert await bucket.check(JOB) == (None, False)
    assert await bucket.outcomes([JOB]) == []
    assert await bucket.record(JOB) is None
    store.outage = False
    assert await bucket.check(JOB) == (None, True)


async def test_unreadable_records_are_ignored(tmp_path: Path) -> None:
    bucket, store = markers(tmp_path)
    ref = ObjectRef(POOL, f"ffpool/jobs/{JOB}/completed.json")
    await store.put_bytes(ref, b"not json")
    assert await bucket.completed(JOB) is None


class CountingStore(MemoryObjectStore):
    def __init__(self, *buckets: str) -> None:
        super().__init__(*buckets)
        self.in_flight = 0
        self.peak = 0

    async def get_bytes(self, ref: ObjectRef, max_bytes: int) -> bytes | None:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(0.001)
            return await super().get_bytes(ref, max_bytes)
        finally:
            self.in_flight -= 1


async def test_outcomes_of_many_jobs_are_read_a_bounded_number_at_a_time(
    tmp_path: Path,
) -> None:
    store = CountingStore(POOL)
    bucket = BucketMarkers(store, settings(tmp_path))
    ids = [f"{i:032x}" for i in range(100)]
    for job_id in ids[::2]:
        await bucket.mark_completed(CompletedEvent(job_id=job_id, processing_time_s=1.0))
    found = await bucket.outcomes(ids)
    assert [o.job_id for o in found] == ids[::2]
    assert 1 < store.peak <= MAX_CONCURRENT_READS


def test_the_backend_keeps_records_in_the_bucket_with_s3_storage(tmp_path: Path) -> None:
    store = MemoryObjectStore(POOL)
    s3 = rabbit_backend._Base.of(settings(tmp_path), store)
    assert isinstance(s3.markers, BucketMarkers)
    files = rabbit_backend._Base.of(Settings(_env_file=None, media_root=tmp_path), store)
    assert isinstance(files.markers, Markers)
    with pytest.raises(ValueError, match="object store"):
        rabbit_backend._Base.of(settings(tmp_path))


def test_both_record_kinds_are_job_markers(tmp_path: Path) -> None:
    kinds: list[JobMarkers] = [Markers(tmp_path), markers(tmp_path)[0]]
    assert len(kinds) == 2


async def test_started_attempts_in_both_record_kinds(tmp_path: Path) -> None:
    """The highest attempt that started a run (quorum mode, attempts.py): 0 until recorded,
    overwritten (a hand-back lowers it), 0 again when unreadable or unsafe; a write that
    fails says so (False), never raises."""
    bucket, store = markers(tmp_path)
    for kind in (Markers(tmp_path / "files"), bucket):
        assert await kind.started(JOB) == 0
        assert await kind.mark_started(JOB, 2)
        assert await kind.started(JOB) == 2
        assert await kind.mark_started(JOB, 1)
        assert await kind.started(JOB) == 1
        assert not await kind.mark_started("../x", 3)
        assert await kind.started("../x") == 0
    assert f"ffpool/jobs/{JOB}/started.json" in store.objects(POOL)
    assert (tmp_path / "files" / "jobs" / JOB / ".ffpool-started.json").exists()
    await store.put_bytes(ObjectRef(POOL, f"ffpool/jobs/{JOB}/started.json"), b"{}")
    assert await bucket.started(JOB) == 0
    store.outage = True
    assert not await bucket.mark_started(JOB, 3)
    assert await bucket.started(JOB) == 0
    store.outage = False
    await bucket.remove(JOB)
    assert await bucket.started(JOB) == 0
