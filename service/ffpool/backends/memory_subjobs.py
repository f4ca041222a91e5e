"""Chunk sub-jobs on the memory backend: the `SubJobs` protocol (chunks/subjobs.py).

Chunk jobs go in the backend's one priority queue and are run by its workers through its
executor like any job; their records are kept here, apart from the client-visible ones: no
client `get`s them, no tenant's active count includes them, no webhook is sent for them, and
they count neither against MAX_QUEUED_JOBS nor in `stats()` (one job's 256 chunks must not make
other clients' submits fail with `queue_full`).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

from ffpool import logs
from ffpool.backends.base import BackendError, BackendStats
from ffpool.chunks.subjobs import SubOutcome
from ffpool.domain.events import FailureCode, JobEvent, JobRecord, ProgressEvent, apply
from ffpool.domain.jobs import Job
from ffpool.ffmpeg.outcome import JobFailure

log = logs.get(__name__)
# Finished chunk records kept for `outcome` (a parent polls its chunks while it waits, so
# only the recent ones matter); live ones are always kept.
CHUNK_RECORDS_KEPT = 10_000
OnProgress = Callable[[ProgressEvent], None]


class ChunkBook:
    """The chunk jobs' records and who watches their progress, by parent."""

    def __init__(self, kept: int = CHUNK_RECORDS_KEPT) -> None:
        self._kept = kept
        self._records: OrderedDict[str, JobRecord] = OrderedDict()
        self._parents: dict[str, str] = {}
        self._watchers: dict[str, list[OnProgress]] = {}
        self._queued: set[str] = set()  # in the backend's queue, not yet taken by a worker
        self.lent = 0  # slots lent now (`MemorySubJobs.lend_slot`)

    @property
    def queued(self) -> int:
        """Chunk jobs waiting in the backend's queue (the backend counts them apart)."""
        return len(self._queued)

    def add(self, job: Job) -> bool:
        """Record a chunk job as queued; False if its id is already known (not queued twice)."""
        if job.chunk is None:
            raise ValueError(f"job {job.id} is not a chunk job")
        if job.id in self._records:
            return False
        self._records[job.id] = JobRecord.queued(job)
        self._parents[job.id] = job.chunk.parent
        self._queued.add(job.id)
        self._forget_over_limit()
        return True

    def get(self, job_id: str) -> JobRecord | None:
        return self._records.get(job_id)

    def owns(self, job_id: str) -> bool:
        return job_id in self._records

    def fold(self, event: JobEvent) -> bool:
        """Fold a chunk job's event into its record (and pass progress to its parent's
        watchers); False when the event is not a chunk job's."""
        record = self._records.get(event.job_id)
        if record is None:
            return False
        self._queued.discard(event.job_id)  # taken (running), cancelled or orphaned
        self._records[event.job_id] = apply(record, event)
        if isinstance(event, ProgressEvent):
            parent = self._parents.get(event.job_id, "")
            for on_progress in tuple(self._watchers.get(parent, ())):
                try:
                    on_progress(event)
                except Exception:  # a watcher's bug must not stop the chunk's run
                    log.exception("chunk progress watcher failed", job_id=event.job_id)
        return True

    def outcome(self, job_id: str) -> SubOutcome | None:
        record = self._records.get(job_id)
        return None if record is None else record.terminal_event()

    @asynccontextmanager
    async def watch(self, parent_id: str, on_progress: OnProgress) -> AsyncIterator[None]:
        self._watchers.setdefault(parent_id, []).append(on_progress)
        try:
            yield
        finally:
            watchers = self._watchers.get(parent_id, [])
            if on_progress in watchers:
                watchers.remove(on_progress)
            if not watchers:
                self._watchers.pop(parent_id, None)

    def forget(self, job_ids: Sequence[str]) -> None:
        for job_id in job_ids:
            self._records.pop(job_id, None)
            self._parents.pop(job_id, None)
            self._queued.discard(job_id)

    def _forget_over_limit(self) -> None:
        excess = len(self._records) - self._kept
        if excess <= 0:
            return
        finished = [j for j, r in self._records.items() if r.state.terminal][:excess]
        for job_id in finished:
            del self._records[job_id]
            self._parents.pop(job_id, None)


def orphan(job: Job, record_of: Callable[[str], JobRecord | None]) -> bool:
    """A chunk job whose parent already finished (failed, cancelled): never run."""
    parent = record_of(job.chunk.parent) if job.chunk is not None else None
    return parent is not None and parent.state.terminal


class Workers(Protocol):
    """What MemorySubJobs needs of the MemoryBackend (backends/memory.py)."""

    def enqueue(self, job: Job) -> None: ...

    def cancel_chunk(self, job_id: str) -> None: ...

    def record_of(self, job_id: str) -> JobRecord | None: ...

    def add_worker(self, closed: Callable[[], bool]) -> Callable[[], None]: ...

    def busy_jobs(self) -> int: ...

    async def stats(self) -> BackendStats: ...


class MemorySubJobs:
    """`SubJobs` on a MemoryBackend (`MemoryBackend.subjobs()`)."""

    def __init__(self, backend: Workers, book: ChunkBook, slots: int) -> None:
        self._backend = backend
        self._book = book
        self._slots = slots

    async def submit(self, jobs: Sequence[Job]) -> None:
        """Chunk jobs skip admission (their parent passed it) and the queue limit; the
        priority is the parent's (a chunk job carries it). A backend that cannot take them
        (draining) fails the parent with `resource_limit`."""
        for job in jobs:
            if job.chunk is None:
                raise ValueError(f"job {job.id} is not a chunk job")
            if not self._book.owns(job.id):
                try:
                    self._backend.enqueue(job)  # raises BackendUnavailable while draining
                except BackendError as exc:
                    raise JobFailure(FailureCode.RESOURCE_LIMIT, refused(exc)) from exc
                self._book.add(job)

    async def outcome(self, job_id: str) -> SubOutcome | None:
        if (found := self._book.outcome(job_id)) is not None:
            return found
        record = self._backend.record_of(job_id)  # a parent: a client-visible job
        return None if record is None else record.terminal_event()

    def watch(self, parent_id: str, on_progress: OnProgress) -> AbstractAsyncContextManager[None]:
        return self._book.watch(parent_id, on_progress)

    async def cancel(self, job_ids: Sequence[str]) -> None:
        for job_id in job_ids:
            self._backend.cancel_chunk(job_id)

    @asynccontextmanager
    async def lend_slot(self) -> AsyncIterator[None]:
        closed = asyncio.Event()
        close = self._backend.add_worker(closed.is_set)
        self._book.lent += 1
        try:
            yield
        finally:
            self._book.lent -= 1
            closed.set()
            close()

    async def capacity(self) -> int:
        """Idle slots: slots (lent ones included) not busy, minus the jobs (chunks
        included) waiting for one, plus one: the caller's own, busy with the parent."""
        waiting = (await self._backend.stats()).queued_jobs + self._book.queued
        idle = self._slots + self._book.lent - self._backend.busy_jobs() - waiting
        return max(0, idle + 1)

    async def forget(self, job_ids: Sequence[str]) -> None:
        """Drop these chunk jobs' records (a parent that ended needs them no more)."""
        self._book.forget(job_ids)


def refused(exc: BackendError) -> str:
    """What a parent whose chunks the queue did not take fails with (`resource_limit`)."""
    return f"the job queue has no room for this job's chunks now ({exc}): try again later"
