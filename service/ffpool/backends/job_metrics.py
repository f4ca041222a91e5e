"""What a backend tells its metrics when a job starts and ends (docs/monitoring.md): one
place for both backends, so their numbers mean the same. Chunk sub-jobs are not counted: the
job is, not its pieces (docs/chunks.md)."""

from __future__ import annotations

import time

from ffpool.backends.base import JobMetrics
from ffpool.domain.events import CancelledEvent, CompletedEvent, FailedEvent, JobState
from ffpool.domain.jobs import Job


def started(metrics: JobMetrics, job: Job, attempt: int = 1) -> None:
    """The job's wait from submit to start (wall clock: its submit time is in the job), on its
    first attempt only: a retry's time since submit includes its earlier runs, which were not
    waiting (docs/monitoring.md)."""
    if job.chunk is None and attempt == 1:
        waited = time.time() - job.created_at.timestamp()
        metrics.observe_started(job.spec.operation.op, max(waited, 0.0))


def finished(
    metrics: JobMetrics,
    job: Job,
    outcome: CompletedEvent | FailedEvent | CancelledEvent,
    seconds: float,
) -> None:
    if job.chunk is not None:
        return
    operation = job.spec.operation.op
    metrics.observe_finished(operation, JobState(outcome.type), seconds)
    if isinstance(outcome, CompletedEvent):
        media = outcome.metadata.duration if outcome.metadata is not None else None
        out_bytes = sum(out.size for out in outcome.outputs)
        metrics.observe_completed(operation, media, seconds, out_bytes)
        if outcome.input_bytes is not None:
            metrics.observe_input(operation, outcome.input_bytes)
