"""The embedded default backend: an in-process priority queue and in-process workers.

Runs on one machine with nothing but Python and FFmpeg. Jobs live only in memory: a restart
forgets them (use the RabbitMQ backend for durability).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from ffpool import logs
from ffpool.backends.base import (
    BackendStats,
    BackendUnavailable,
    Health,
    QueueFull,
    Submission,
    UnknownJob,
)
from ffpool.backends.hub import EventHub, Subscription
from ffpool.jobs.events import (
    CancelledEvent,
    CompletedEvent,
    FailedEvent,
    JobEvent,
    JobRecord,
    JobState,
    ProgressEvent,
    StateEvent,
    apply,
)
from ffpool.jobs.models import Job
from ffpool.settings import Settings

log = logs.get(__name__)
DEAD_LETTERS_KEPT = 1000


class JobExecutor(Protocol):
    async def execute(
        self, job: Job, on_progress: _ProgressSink
    ) -> CompletedEvent | FailedEvent: ...


class _ProgressSink(Protocol):
    def __call__(self, event: ProgressEvent, /) -> None: ...


class FinishObserver(Protocol):
    def observe_submitted(self) -> None: ...

    def observe_finished(self, operation: str, state: JobState, seconds: float) -> None: ...


class MemoryBackend:
    name = "memory"

    def __init__(
        self,
        settings: Settings,
        executor: JobExecutor,
        metrics: FinishObserver,
        remove_files: Callable[[str], None] | None = None,
    ) -> None:
        self._settings = settings
        self._remove_files = remove_files
        self._executor = executor
        self._metrics = metrics
        self._hub = EventHub()
        self._records: OrderedDict[str, JobRecord] = OrderedDict()
        self._queued: dict[str, Job] = {}
        self._pending: asyncio.PriorityQueue[tuple[int, int, str]] = asyncio.PriorityQueue()
        self._seq = itertools.count()
        self._running: dict[str, asyncio.Task[CompletedEvent | FailedEvent]] = {}
        self._dead: deque[str] = deque(maxlen=DEAD_LETTERS_KEPT)
        self._tasks: list[asyncio.Task[None]] = []
        self._busy: set[int] = set()
        self._draining = False

    async def start(self) -> None:
        for index in range(self._settings.max_concurrent_jobs):
            self._tasks.append(asyncio.create_task(self._work(index), name=f"worker-{index}"))
        self._tasks.append(asyncio.create_task(self._sweep(), name="retention"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def submit(self, job: Job) -> Submission:
        known = self._records.get(job.id)
        if known is not None:
            return Submission(record=known, duplicate=True)
        if self._draining:
            raise BackendUnavailable("the service is shutting down")
        if len(self._queued) >= self._settings.max_queued_jobs:
            raise QueueFull(f"the queue holds {len(self._queued)} jobs, its limit")
        record = JobRecord.queued(job)
        self._records[job.id] = record
        self._queued[job.id] = job
        # Higher priority first, then first come first served.
        self._pending.put_nowait((-job.priority, next(self._seq), job.id))
        self._metrics.observe_submitted()
        log.info("job queued", job_id=job.id, operation=record.operation, priority=job.priority)
        return Submission(record=record)

    async def cancel(self, job_id: str) -> JobRecord:
        record = self._records.get(job_id)
        if record is None:
            raise UnknownJob(f"no job {job_id}")
        if record.state is JobState.QUEUED:
            del self._queued[job_id]
            self._emit(CancelledEvent(job_id=job_id))
            self._metrics.observe_finished(record.operation, JobState.CANCELLED, 0.0)
        elif (task := self._running.get(job_id)) is not None:
            task.cancel()
        return self._records[job_id]

    async def get(self, job_id: str) -> JobRecord | None:
        return self._records.get(job_id)

    def subscribe(self, job_id: str) -> AbstractAsyncContextManager[Subscription]:
        return self._hub.subscribe(job_id)

    async def stats(self) -> BackendStats:
        return BackendStats(
            total_jobs=len(self._records),
            active_jobs=len(self._running),
            queued_jobs=len(self._queued),
            max_concurrent=self._settings.max_concurrent_jobs,
            backend=self.name,
        )

    async def dead_letters(self, limit: int = 100) -> list[JobRecord]:
        found = (self._records.get(job_id) for job_id in reversed(self._dead))
        return [r for r in found if r is not None][:limit]

    async def health(self) -> Health:
        alive = self._tasks and not any(t.done() for t in self._tasks)
        return Health.HEALTHY if alive else Health.UNHEALTHY

    def busy_jobs(self) -> int:
        return len(self._running)

    async def drain(self, timeout: float) -> None:
        """Let running jobs finish for up to `timeout` seconds; queued jobs are not started."""
        self._draining = True
        for index, task in enumerate(self._tasks[: self._settings.max_concurrent_jobs]):
            if index not in self._busy:
                task.cancel()  # idle: waiting on the queue, nothing to lose
        if self._running:
            await asyncio.wait(list(self._running.values()), timeout=timeout)

    def _emit(self, event: JobEvent) -> None:
        record = self._records.get(event.job_id)
        if record is None:
            return
        updated = apply(record, event)
        self._records[event.job_id] = updated
        if updated.state is JobState.FAILED and not record.state.terminal:
            self._dead.append(event.job_id)
        self._hub.publish(event)

    async def _work(self, index: int) -> None:
        worker = f"{self._settings.instance_name}/{index}"
        while not self._draining:
            _, _, job_id = await self._pending.get()
            job = self._queued.pop(job_id, None)
            if job is not None:
                self._busy.add(index)
                try:
                    await self._run(job, worker)
                finally:
                    self._busy.discard(index)

    async def _run(self, job: Job, worker: str) -> None:
        operation = job.spec.operation.op
        self._emit(StateEvent(job_id=job.id, state=JobState.RUNNING, operation=operation,
                              priority=job.priority, worker=worker))  # fmt: skip
        started = time.monotonic()
        task = asyncio.create_task(self._executor.execute(job, self._emit), name=worker)
        self._running[job.id] = task
        try:
            outcome: JobEvent = await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the worker itself is stopping
            outcome = CancelledEvent(job_id=job.id)
        finally:
            del self._running[job.id]
        self._emit(outcome)
        state = self._records[job.id].state
        self._metrics.observe_finished(operation, state, time.monotonic() - started)
        log.info("job finished", job_id=job.id, state=state.value, worker=worker)

    async def _sweep(self) -> None:
        """Forget finished jobs after the retention time, and beyond the count limit."""
        period = max(1.0, min(60.0, self._settings.job_retention_seconds / 4))
        while True:
            await asyncio.sleep(period)
            doomed = self.forget_expired(time.time())
            if self._remove_files is not None:
                for job_id in doomed:
                    await asyncio.to_thread(self._remove_files, job_id)

    def forget_expired(self, now: float) -> list[str]:
        """Drop expired records; returns their ids (their files go too, in `_sweep`)."""
        retention = self._settings.job_retention_seconds
        finished = [r for r in self._records.values() if r.finished_at is not None]
        excess = max(0, len(self._records) - self._settings.max_retained_jobs)
        doomed = [
            r.job_id
            for r in finished
            if r.finished_at is not None and now - r.finished_at.timestamp() >= retention
        ]
        doomed += [r.job_id for r in finished[:excess] if r.job_id not in doomed]
        for job_id in doomed:
            del self._records[job_id]
        return doomed
