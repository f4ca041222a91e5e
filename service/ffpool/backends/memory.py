"""The embedded default backend: in-process priority queue and workers, nothing but Python and
FFmpeg. Jobs live in memory only: a restart forgets them (RabbitMQ is the durable backend)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from ffpool import logs
from ffpool.backends import job_metrics
from ffpool.backends.admission import ActiveIndex, Admission, TenantLimits
from ffpool.backends.base import (
    NO_NOTIFIER,
    BackendStats,
    BackendUnavailable,
    Health,
    JobExecutor,
    JobMetrics,
    JobNotifier,
    QueueFull,
    Submission,
    UnknownJob,
)
from ffpool.backends.hub import EventHub, Subscription
from ffpool.backends.memory_listing import MemoryListings
from ffpool.backends.memory_subjobs import ChunkBook, MemorySubJobs, orphan
from ffpool.backends.retention import RetainedBytes
from ffpool.chunks.subjobs import SubJobs
from ffpool.domain.events import (
    CancelledEvent,
    CompletedEvent,
    FailedEvent,
    JobEvent,
    JobRecord,
    JobState,
    StateEvent,
    apply,
)
from ffpool.domain.jobs import Job
from ffpool.settings import Settings

log = logs.get(__name__)
DEAD_LETTERS_KEPT = 1000


class MemoryBackend(MemoryListings):
    name = "memory"

    def __init__(
        self,
        settings: Settings,
        executor: JobExecutor,
        metrics: JobMetrics,
        remove_files: Callable[[str], None] | None = None,
        notifier: JobNotifier = NO_NOTIFIER,
    ) -> None:
        self._settings = settings
        self._notifier = notifier
        self._remove_files = remove_files
        self._executor = executor
        self._metrics = metrics
        self._hub = EventHub()
        self._records: OrderedDict[str, JobRecord] = OrderedDict()
        self._retained = RetainedBytes.from_settings(settings)
        self._forgotten: list[str] = []  # evicted for bytes; their files go in `_sweep`
        self._queued: dict[str, Job] = {}
        self._pending: asyncio.PriorityQueue[tuple[int, int, str]] = asyncio.PriorityQueue()
        self._seq = itertools.count()
        self._running: dict[str, asyncio.Task[CompletedEvent | FailedEvent]] = {}
        self._dead: deque[str] = deque(maxlen=DEAD_LETTERS_KEPT)
        self._tasks: list[asyncio.Task[None]] = []
        self._busy: set[int] = set()
        self._draining = False
        self.admission = Admission(TenantLimits.from_settings(settings))
        self._active = ActiveIndex()
        self._chunks = ChunkBook()  # chunk jobs' records: never shown to clients
        self._lent: dict[int, asyncio.Task[None]] = {}
        self._lent_ids = itertools.count(settings.max_concurrent_jobs)

    def record_of(self, job_id: str) -> JobRecord | None:
        return self._records.get(job_id)

    def subjobs(self) -> SubJobs:
        """What a chunked run needs of this backend (backends/memory_subjobs.py)."""
        return MemorySubJobs(self, self._chunks, self._settings.max_concurrent_jobs)

    async def start(self) -> None:
        for index in range(self._settings.max_concurrent_jobs):
            self._tasks.append(asyncio.create_task(self._work(index), name=f"worker-{index}"))
        self._tasks.append(asyncio.create_task(self._sweep(), name="retention"))

    async def stop(self) -> None:
        tasks = [*self._tasks, *self._lent.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    async def submit(self, job: Job) -> Submission:
        known = self._records.get(job.id)
        if known is not None:
            return Submission(record=known, duplicate=True)
        if self._draining:
            raise BackendUnavailable("the service is shutting down")
        if (queued := len(self._queued) - self._chunks.queued) >= self._settings.max_queued_jobs:
            raise QueueFull(f"the queue holds {queued} jobs, its limit")  # chunks apart
        record = self._retained.charge(JobRecord.queued(job))
        self._records[job.id] = record
        self._active.track(record)
        if self._notifier.wants(job):  # before a worker can take it: `queued` goes first
            await self._notifier.notify(job, StateEvent.of(job, JobState.QUEUED))
        self.enqueue(job)
        self._metrics.observe_submitted()
        log.info("job queued", job_id=job.id, operation=record.operation, priority=job.priority)
        return Submission(record=record)

    def enqueue(self, job: Job) -> None:  # no admission here: that is `submit`'s
        if self._draining:
            raise BackendUnavailable("the service is shutting down")
        self._queued[job.id] = job
        # Higher priority first, then first come first served.
        self._pending.put_nowait((-job.priority, next(self._seq), job.id))

    def cancel_chunk(self, job_id: str) -> None:
        if self._queued.pop(job_id, None) is not None:
            self._emit(CancelledEvent(job_id=job_id, reason="parent stopped"))
        elif (task := self._running.get(job_id)) is not None:
            task.cancel()

    def add_worker(self, closed: Callable[[], bool]) -> Callable[[], None]:
        """One worker more until `closed()`; returns what to call once it is: an idle
        worker then stops at once, a busy one after its job."""
        index = next(self._lent_ids)
        task = asyncio.create_task(self._work(index, closed), name=f"lent-{index}")
        self._lent[index] = task
        task.add_done_callback(lambda _: self._lent.pop(index, None))

        def close() -> None:
            if index not in self._busy:
                task.cancel()  # waiting on the queue: nothing to lose

        return close

    async def cancel(self, job_id: str) -> JobRecord:
        record = self._records.get(job_id)
        if record is None:
            raise UnknownJob(f"no job {job_id}")
        if record.state is JobState.QUEUED:
            job = self._queued.pop(job_id)
            cancelled = CancelledEvent(job_id=job_id)
            self._emit(cancelled)
            if self._notifier.wants(job):
                await self._notifier.notify(job, cancelled)
            self._metrics.observe_finished(record.operation, JobState.CANCELLED, 0.0)
        elif (task := self._running.get(job_id)) is not None:
            task.cancel()
        return self._records[job_id]

    async def get(self, job_id: str) -> JobRecord | None:
        self._retained.touch(job_id)
        return self._records.get(job_id)

    def subscribe(self, job_id: str) -> AbstractAsyncContextManager[Subscription]:
        return self._hub.subscribe(job_id)

    async def stats(self) -> BackendStats:
        return BackendStats(
            total_jobs=len(self._records),
            active_jobs=len(self._running),
            queued_jobs=len(self._queued) - self._chunks.queued,
            max_concurrent=self._settings.max_concurrent_jobs,
            backend=self.name,
            dead_letters=len(self._dead),
        )

    async def active_jobs(self, tenant: str) -> int:
        return self._active.count(tenant)

    def tenant_of(self, job_id: str) -> str | None:
        record = self._records.get(job_id)
        return record.tenant if record is not None else None

    async def health(self) -> Health:
        alive = self._tasks and not any(t.done() for t in self._tasks)
        return Health.HEALTHY if alive else Health.UNHEALTHY

    def busy_jobs(self) -> int:
        return len(self._running)

    async def drain(self, timeout: float) -> None:
        """Let running jobs finish for up to `timeout` seconds; queued jobs are not started."""
        self._draining = True
        slots = [*enumerate(self._tasks[: self._settings.max_concurrent_jobs])]
        for index, task in [*slots, *self._lent.items()]:
            if index not in self._busy:
                task.cancel()  # idle: waiting on the queue, nothing to lose
        if self._running:
            await asyncio.wait(list(self._running.values()), timeout=timeout)

    def _emit(self, event: JobEvent) -> None:
        if self._chunks.fold(event):
            return
        record = self._records.get(event.job_id)
        if record is None:
            return
        updated = self._retained.charge(apply(record, event))
        self._records[event.job_id] = updated
        self._active.track(updated)
        if updated.state is JobState.FAILED and not record.state.terminal:
            self._dead.append(event.job_id)
        if updated.state.terminal and self._retained.over:
            self._evict_over_budget(keep=event.job_id)
        self._hub.publish(event)

    def _evict_over_budget(self, keep: str) -> None:
        """Forget finished records, least recently used first, until within MAX_RETAINED_BYTES
        (live jobs' records stay: they are what their clients follow)."""
        for job_id in self._retained.least_recent():
            if not self._retained.over:
                return
            if job_id != keep and self._records[job_id].state.terminal:
                del self._records[job_id]
                self._retained.discard(job_id)
                self._forgotten.append(job_id)

    async def _work(self, index: int, closed: Callable[[], bool] = bool) -> None:
        worker = f"{self._settings.instance_name}/{index}"
        while not self._draining and not closed():
            _, _, job_id = await self._pending.get()
            job = self._queued.pop(job_id, None)
            if job is not None and orphan(job, self._records.get):
                self._emit(CancelledEvent(job_id=job.id, reason="parent finished"))
            elif job is not None:
                self._busy.add(index)
                try:
                    await self._run(job, worker)
                finally:
                    self._busy.discard(index)

    async def _run(self, job: Job, worker: str) -> None:
        running = StateEvent.of(job, JobState.RUNNING, worker=worker)
        self._emit(running)
        notify = self._notifier.wants(job)
        if notify:
            await self._notifier.notify(job, running)
        started = time.monotonic()
        job_metrics.started(self._metrics, job)
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
        if notify and isinstance(outcome, CompletedEvent | FailedEvent | CancelledEvent):
            await self._notifier.notify(job, outcome)
        if isinstance(outcome, CompletedEvent | FailedEvent | CancelledEvent):
            job_metrics.finished(self._metrics, job, outcome, time.monotonic() - started)
        log.info("job finished", job_id=job.id, state=outcome.type, worker=worker)

    async def _sweep(self) -> None:
        """Forget finished jobs after the retention time, and beyond the count limit."""
        period = max(1.0, min(60.0, self._settings.job_retention_seconds / 4))
        while True:
            await asyncio.sleep(period)
            doomed = self.forget_expired(time.time()) + self._forgotten
            self._forgotten = []
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
            self._retained.discard(job_id)
        return doomed
