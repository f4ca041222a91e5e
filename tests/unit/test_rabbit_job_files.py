"""A job's record from its files, for servers that never saw it (records.from_files), and
the files themselves (markers.py)."""

from __future__ import annotations

from pathlib import Path

from ffpool.backends.rabbitmq.markers import Markers
from ffpool.backends.rabbitmq.records import from_files
from ffpool.domain.events import CompletedEvent, FailedEvent, FailureCode, JobState
from ffpool.domain.jobs import Job, JobSpec, PathInput, ProbeOp


def _job() -> Job:
    return Job(spec=JobSpec(input=PathInput(path="a.mp4"), operation=ProbeOp()), priority=3)


def test_only_accepted_is_queued_with_the_jobs_fields() -> None:
    job = _job()
    record = from_files(job.id, job, None, None, cancelled=False)
    assert record is not None
    assert (record.state, record.operation, record.priority) == (JobState.QUEUED, "probe", 3)


def test_no_trace_is_no_record() -> None:
    assert from_files("c" * 32, None, None, None, cancelled=False) is None


def test_the_commit_wins_over_a_racing_cancel() -> None:
    job = _job()
    done = CompletedEvent(job_id=job.id, processing_time_s=1.0)
    record = from_files(job.id, job, done, None, cancelled=True)
    assert record is not None
    assert record.state is JobState.COMPLETED
    assert record.result == done


def test_failed_and_cancelled_without_an_accepted_record() -> None:
    failed = FailedEvent(job_id="d" * 32, code=FailureCode.INVALID_MEDIA, message="no")
    record = from_files(failed.job_id, None, None, failed, cancelled=False)
    assert record is not None
    assert record.state is JobState.FAILED
    cancelled = from_files("e" * 32, _job(), None, None, cancelled=True)
    assert cancelled is not None
    assert cancelled.state is JobState.CANCELLED


async def test_markers_round_trip(tmp_path: Path) -> None:
    markers = Markers(tmp_path)
    job = _job()
    assert await markers.record(job.id) is None
    await markers.mark_accepted(job)
    record = await markers.record(job.id)
    assert record is not None
    assert record.state is JobState.QUEUED
    await markers.mark_failed(FailedEvent(job_id=job.id, code=FailureCode.TIMEOUT, message="t"))
    record = await markers.record(job.id)
    assert record is not None
    assert record.state is JobState.FAILED
