"""The job backend protocol: what the WebSocket and HTTP servers need from whatever carries jobs.

`memory` (in-process queue and workers) and `rabbitmq` implement it side by side.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from pydantic import BaseModel

from ffpool.jobs.events import JobEvent, JobRecord
from ffpool.jobs.models import Job


class BackendError(Exception):
    """A submission or cancel the backend could not take; `code` maps to a protocol error."""

    code = "internal_error"


class QueueFull(BackendError):
    code = "queue_full"


class BackendUnavailable(BackendError):
    code = "backend_unavailable"


class BackendBusy(BackendError):
    code = "busy"


class UnknownJob(BackendError):
    code = "unknown_job"


class Submission(BaseModel):
    record: JobRecord
    duplicate: bool = False


class BackendStats(BaseModel):
    total_jobs: int
    active_jobs: int
    queued_jobs: int
    max_concurrent: int
    backend: str


class Health(enum.StrEnum):
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


class Subscription(Protocol):
    """Live events of one job, from the moment of subscribing; bounded."""

    def __aiter__(self) -> AsyncIterator[JobEvent]: ...

    def pending(self) -> list[JobEvent]:
        """Events already buffered, without waiting."""


class JobBackend(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def submit(self, job: Job) -> Submission:
        """Queue a job; raises QueueFull/BackendUnavailable/BackendBusy. A job whose id (from
        an idempotency key) is already known is not queued twice: `duplicate=True`."""

    async def cancel(self, job_id: str) -> JobRecord:
        """Cancel a queued or running job; raises UnknownJob."""

    async def get(self, job_id: str) -> JobRecord | None: ...

    def subscribe(self, job_id: str) -> AbstractAsyncContextManager[Subscription]:
        """Live events of a job; enter it before reading the snapshot so nothing is missed."""

    async def stats(self) -> BackendStats: ...

    async def dead_letters(self, limit: int = 100) -> list[JobRecord]: ...

    async def health(self) -> Health: ...
