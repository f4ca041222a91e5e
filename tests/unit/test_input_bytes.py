"""`ffpool_input_bytes_total` (docs/monitoring.md): the backends report a completed job's input
size through backends/job_metrics.py, once per job, never for its chunk sub-jobs, never for a
failed run; the executor reads it from the local file."""

from __future__ import annotations

from ffpool.backends import job_metrics
from ffpool.domain.events import CompletedEvent, FailedEvent, FailureCode
from ffpool.domain.jobs import ChunkTask, Job, JobSpec, PathInput, TranscodeOp
from tests.fakes import FakeMetrics


def job(chunk: ChunkTask | None = None) -> Job:
    return Job(spec=JobSpec(input=PathInput(path="a.mp4"), operation=TranscodeOp()), chunk=chunk)


def test_a_completed_job_counts_its_input_once() -> None:
    metrics, done = FakeMetrics(), job()
    completed = CompletedEvent(job_id=done.id, processing_time_s=1.0, input_bytes=1234)
    job_metrics.finished(metrics, done, completed, 1.0)
    assert metrics.input_bytes == [("transcode", 1234)]


def test_chunks_failures_and_older_events_count_nothing() -> None:
    metrics = FakeMetrics()
    chunk = ChunkTask(parent=job().id, index=0, count=2, start_s=0, duration_s=2)
    piece = job(chunk)
    completed = CompletedEvent(job_id=piece.id, processing_time_s=1.0, input_bytes=10)
    job_metrics.finished(metrics, piece, completed, 1.0)
    failed = job()
    event = FailedEvent(job_id=failed.id, code=FailureCode.FFMPEG_ERROR, message="no")
    job_metrics.finished(metrics, failed, event, 1.0)
    older = job()  # an event committed before the field existed
    job_metrics.finished(metrics, older, CompletedEvent(job_id=older.id, processing_time_s=1), 1)
    assert metrics.input_bytes == []


def test_a_stored_event_without_the_field_still_reads() -> None:
    stored = f'{{"type": "completed", "job_id": "{job().id}", "processing_time_s": 1.0}}'
    assert CompletedEvent.model_validate_json(stored).input_bytes is None
