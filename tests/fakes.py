"""Test doubles for the engine: an executor that runs on command instead of FFmpeg."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ffpool.domain.events import (
    CompletedEvent,
    FailedEvent,
    FailureCode,
    JobState,
    ProgressEvent,
)
from ffpool.domain.jobs import Job


class FakeExecutor:
    """Records the order jobs start in; each job runs until `release(job_id)` (or at once)."""

    def __init__(self, *, hold: bool = False) -> None:
        self.hold = hold
        self.started: list[str] = []
        self.cancelled: list[str] = []
        self._gates: dict[str, asyncio.Event] = {}

    def release(self, job_id: str) -> None:
        self._gates.setdefault(job_id, asyncio.Event()).set()

    async def execute(
        self, job: Job, on_progress: Callable[[ProgressEvent], None]
    ) -> CompletedEvent | FailedEvent:
        self.started.append(job.id)
        on_progress(ProgressEvent(job_id=job.id, percent=50.0, out_time_s=1.0))
        gate = self._gates.setdefault(job.id, asyncio.Event())
        try:
            if self.hold:
                await gate.wait()
        except asyncio.CancelledError:
            self.cancelled.append(job.id)
            raise
        if job.spec.operation.op == "probe":
            return FailedEvent(job_id=job.id, code=FailureCode.INVALID_MEDIA, message="bad")
        return CompletedEvent(job_id=job.id, processing_time_s=0.0)


class NullMetrics:
    def __init__(self) -> None:
        self.finished: list[tuple[str, JobState]] = []
        self.submitted = 0

    def observe_submitted(self) -> None:
        self.submitted += 1

    def observe_finished(self, operation: str, state: JobState, seconds: float) -> None:
        self.finished.append((operation, state))


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll a condition with a deadline (never sleep-and-hope)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)
