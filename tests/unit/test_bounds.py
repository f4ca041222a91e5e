"""Bounded job results and retained records: truncation (pure), and both record stores kept
within MAX_RETAINED_BYTES, least recently used first."""

from __future__ import annotations

from collections.abc import Callable

from ffpool.backends.memory import MemoryBackend
from ffpool.backends.rabbitmq.records import RecordCache
from ffpool.backends.retention import RetainedBytes
from ffpool.domain import bounds
from ffpool.domain.events import (
    CompletedEvent,
    FailedEvent,
    FailureCode,
    JobRecord,
    JobState,
    MediaInfo,
    ProgressEvent,
    StreamInfo,
    apply,
)
from ffpool.domain.jobs import Job, JobSpec, PathInput, ProbeOp, utcnow
from ffpool.settings import Settings
from tests.fakes import FakeMetrics
from tests.polling import eventually

STREAM = StreamInfo(index=0, codec_type="audio", codec_name="pcm_s16le", sample_rate=8000)


def media(streams: int, codec: str = "pcm_s16le") -> MediaInfo:
    return MediaInfo(
        format_name="matroska,webm",
        streams=tuple(
            STREAM.model_copy(update={"index": i, "codec_name": codec}) for i in range(streams)
        ),
    )


def record(job_id: str, metadata: MediaInfo | None = None) -> JobRecord:
    queued = JobRecord(job_id=job_id, state=JobState.QUEUED, operation="probe", created_at=utcnow())
    return apply(queued, CompletedEvent(job_id=job_id, processing_time_s=1.0, metadata=metadata))


def job_id(i: int) -> str:
    return f"{i:032x}"


def test_small_metadata_is_left_alone() -> None:
    info = media(3)
    assert bounds.bound_media_info(info) is info
    assert bounds.bound_media_info(None) is None


def test_stream_list_is_cut_and_flagged() -> None:
    bounded = bounds.bound_media_info(media(1000))
    assert bounded is not None
    assert len(bounded.streams) == bounds.MAX_STREAMS
    assert [s.index for s in bounded.streams] == list(range(bounds.MAX_STREAMS))
    assert bounded.streams_truncated
    assert not media(bounds.MAX_STREAMS).streams_truncated


def test_long_names_are_capped() -> None:
    info = media(2, codec="x" * 10_000).model_copy(update={"format_name": "f" * 500})
    bounded = bounds.bound_media_info(info)
    assert bounded is not None
    assert bounded.format_name is not None
    assert len(bounded.format_name) == bounds.MAX_NAME_CHARS
    assert bounded.format_name.endswith(bounds.ELLIPSIS)
    assert all(len(s.codec_name or "") == bounds.MAX_NAME_CHARS for s in bounded.streams)
    assert not bounded.streams_truncated


def test_record_within_its_cap_is_whole() -> None:
    whole = record(job_id(1), media(3))
    kept, size = bounds.bound_record(whole, 64 * 1024)
    assert kept == whole
    assert size == len(whole.model_dump_json())
    assert not kept.truncated


def test_record_over_its_cap_loses_streams_first_then_metadata() -> None:
    big = record(job_id(1), media(bounds.MAX_STREAMS))
    kept, size = bounds.bound_record(big, 4096)
    assert size <= 4096
    assert kept.truncated
    assert kept.result is not None
    assert kept.result.metadata is not None
    assert kept.result.metadata.streams == ()
    assert kept.result.metadata.streams_truncated
    assert kept.result.metadata.format_name == "matroska,webm"

    tiny, size = bounds.bound_record(big, 300)
    assert tiny.truncated
    assert tiny.result is not None
    assert tiny.result.metadata is None
    assert tiny.state is JobState.COMPLETED


def test_a_failures_stderr_goes_before_its_message() -> None:
    queued = JobRecord(
        job_id=job_id(1), state=JobState.QUEUED, operation="trim", created_at=utcnow()
    )
    failed = apply(
        queued,
        FailedEvent(
            job_id=job_id(1),
            code=FailureCode.FFMPEG_ERROR,
            message="m" * 5000,
            stderr_tail="e" * 4096,
        ),
    )
    kept, size = bounds.bound_record(failed, 4096)
    assert size <= 4096
    assert kept.truncated
    assert kept.failure is not None
    assert kept.failure.stderr_tail == ""
    assert len(kept.failure.message) == bounds.MAX_MESSAGE_CHARS


def test_retained_bytes_are_charged_replaced_and_refunded() -> None:
    retained = RetainedBytes(max_bytes=10**6, max_record_bytes=64 * 1024)
    first = retained.charge(record(job_id(1)))
    size = len(first.model_dump_json())
    assert retained.total == size
    retained.charge(record(job_id(1), media(3)))  # the same job, a bigger version
    assert retained.total == len(record(job_id(1), media(3)).model_dump_json())
    retained.charge(record(job_id(2)))
    retained.touch(job_id(1))
    assert list(retained.least_recent()) == [job_id(2), job_id(1)]
    retained.discard(job_id(1))
    retained.discard(job_id(1))  # twice: no double refund
    assert retained.total == size


def test_record_cache_is_bounded_by_bytes_lru_first() -> None:
    one = len(bounds.bound_record(record(job_id(0), media(1000)), 64 * 1024)[0].model_dump_json())
    cache = RecordCache(capacity=10_000, retained=RetainedBytes(3 * one, 64 * 1024))
    for i in range(3):
        cache.put(record(job_id(i), media(1000)))
    cache.get(job_id(0))  # keep the first one warm
    cache.put(record(job_id(3), media(1000)))
    assert len(cache) == 3
    assert cache.get(job_id(1)) is None
    for kept in (0, 2, 3):
        found = cache.get(job_id(kept))
        assert found is not None
        assert found.result is not None
        assert found.result.metadata is not None
        assert found.result.metadata.streams_truncated


class BigResults:
    """Completes every job at once with the metadata of a 1,000-stream file."""

    async def execute(
        self, job: Job, on_progress: Callable[[ProgressEvent], None]
    ) -> CompletedEvent | FailedEvent:
        return CompletedEvent(job_id=job.id, processing_time_s=0.0, metadata=media(1000))


async def idle(backend: MemoryBackend) -> bool:
    stats = await backend.stats()
    return stats.active_jobs == 0 and stats.queued_jobs == 0


async def test_memory_backend_keeps_finished_records_within_the_byte_budget() -> None:
    settings = Settings(
        _env_file=None,
        max_concurrent_jobs=1,
        max_retained_bytes=64 * 1024,
        max_record_bytes=16 * 1024,
        job_retention_seconds=8,  # a sweep (hands evicted ids to `removed`) every 2 s
    )
    removed: list[str] = []
    backend = MemoryBackend(settings, BigResults(), FakeMetrics(), removed.append)
    jobs = [
        Job(spec=JobSpec(input=PathInput(path="a.mp4"), operation=ProbeOp())) for _ in range(60)
    ]
    await backend.start()
    try:
        for j in jobs:
            await backend.submit(j)
        await eventually(lambda: idle(backend), timeout=10, what="all jobs finished")
        # `tenant_of` reads a record without touching its recency, unlike `get`.
        kept = [j.id for j in jobs if backend.tenant_of(j.id) is not None]
        assert kept == [j.id for j in jobs[-len(kept) :]]  # the oldest went first
        assert 0 < len(kept) < len(jobs)
        records = [await backend.get(job_id) for job_id in kept]
        sizes = [len(r.model_dump_json()) for r in records if r is not None]
        assert len(sizes) == len(kept)
        assert sum(sizes) <= 64 * 1024
        assert all(size <= 16 * 1024 for size in sizes)
        # The evicted records' files are removed by the next sweep, oldest first.
        evicted = [j.id for j in jobs[: len(jobs) - len(kept)]]
        await eventually(lambda: removed == evicted, timeout=20, what="evicted files removed")
    finally:
        await backend.stop()
