"""What a splitting run needs from the backend that carries jobs: the `SubJobs` protocol.

The memory backend (backends/memory_subjobs.py) and the RabbitMQ backend
(backends/rabbitmq/subjobs.py) implement it side by side; the coordinator (coordinator.py)
only calls it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from ffpool.domain.events import CancelledEvent, CompletedEvent, FailedEvent, ProgressEvent
from ffpool.domain.jobs import Job

SubOutcome = CompletedEvent | FailedEvent | CancelledEvent


class SubJobs(Protocol):
    async def submit(self, jobs: Sequence[Job]) -> None:
        """Queue these chunk jobs (each has `chunk` set) durably: with RabbitMQ published with
        a confirm each. Queuing a job whose id is already queued or done is harmless (its
        markers settle the copy). Raises JobFailure(FailureCode.RESOURCE_LIMIT) when the
        backend cannot take them (a full queue, draining, the broker unavailable)."""

    async def outcome(self, job_id: str) -> SubOutcome | None:
        """A chunk job's outcome once it has one (its markers or record), else None; also a
        parent's (whether a stopped parent run was a client's cancel). Cheap: polled."""

    def watch(
        self, parent_id: str, on_progress: Callable[[ProgressEvent], None]
    ) -> AbstractAsyncContextManager[None]:
        """While inside, progress events of the parent's chunk jobs (their own job ids) are
        passed to `on_progress`, as they come, best effort (none may come at all)."""

    async def cancel(self, job_ids: Sequence[str]) -> None:
        """Cancel these chunk jobs: queued ones never run, running ones are stopped. Best
        effort, never raises."""

    def lend_slot(self) -> AbstractAsyncContextManager[None]:
        """While inside, this process takes one job more than its slots: the waiting
        coordinator's slot keeps working (a chunk, or any job). On exit no new job is taken
        through the lent slot; a job it already runs runs to its end."""

    async def capacity(self) -> int:
        """Job slots that could take a chunk now, at least 0: slots not busy minus the jobs
        waiting in the queue, counting the caller's own slot (busy with the parent, lent
        while it waits) as idle. RabbitMQ: the job queue's consumers minus its ready
        messages (0 when the broker cannot tell). ChunkMode.AUTO splits when this is 2 or
        more."""

    async def forget(self, job_ids: Sequence[str]) -> None:
        """Forget these chunk jobs once their parent has ended: the memory backend drops their
        records, RabbitMQ removes their markers (MEDIA_ROOT/jobs/<id>/, or
        <S3_PREFIX>/jobs/<id>/ in the bucket); their `outcome` is None afterwards. Best
        effort, never raises."""
