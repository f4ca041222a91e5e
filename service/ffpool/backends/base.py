"""The job backend protocol: what the WebSocket and HTTP servers need from whatever carries jobs.

`memory` (in-process queue and workers) and `rabbitmq` implement it side by side.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from pydantic import BaseModel

from ffpool.backends.admission import Admission
from ffpool.domain.events import (
    CancelledEvent,
    CompletedEvent,
    FailedEvent,
    JobEvent,
    JobRecord,
    JobState,
    ProgressEvent,
    StateEvent,
)
from ffpool.domain.jobs import Job
from ffpool.domain.listing import JobSummary


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


class TooManyJobs(BackendError):
    """The tenant has TENANT_MAX_ACTIVE_JOBS queued and running (ffpool/backends/tenancy.py)."""

    code = "too_many_jobs"


class RateLimited(BackendError):
    """The tenant submits faster than TENANT_SUBMITS_PER_SECOND on this server."""

    code = "rate_limited"

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class QuotaExceeded(BackendError):
    """The tenant's (or the service's) disk quota is used up (`Storage.check_quota`)."""

    code = "quota_exceeded"


class Submission(BaseModel):
    record: JobRecord
    duplicate: bool = False


class BackendStats(BaseModel):
    total_jobs: int
    active_jobs: int
    queued_jobs: int
    max_concurrent: int
    backend: str
    dead_letters: int | None = None
    """Jobs in the dead-letter queue (RabbitMQ), or dead-lettered jobs kept (memory)."""


class Health(enum.StrEnum):
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"


class JobExecutor(Protocol):
    """What runs a job on a worker, for both backends (ffmpeg/executor.py's, or a test's)."""

    async def execute(
        self, job: Job, on_progress: Callable[[ProgressEvent], None]
    ) -> CompletedEvent | FailedEvent: ...


class JobMetrics(Protocol):
    """The job counts a backend reports (metrics.py's; docs/monitoring.md)."""

    def observe_submitted(self) -> None: ...

    def observe_started(self, operation: str, waited_s: float) -> None:
        """A job started, `waited_s` after it was submitted."""

    def observe_finished(self, operation: str, state: JobState, seconds: float) -> None: ...

    def observe_completed(
        self, operation: str, media_s: float | None, seconds: float, out_bytes: int
    ) -> None:
        """A job completed: its output's media duration, its run's wall time, its bytes."""

    def observe_input(self, operation: str, in_bytes: int) -> None:
        """A completed job's input size, as the worker read it."""

    def observe_reconnect(self) -> None:
        """A broker connection came back after it was lost (RabbitMQ)."""


class JobNotifier(Protocol):
    """Told of every state change of a job where it happens, for its webhooks
    (ffpool/webhooks/notifier.py); raises BackendError when the change could not be recorded."""

    def wants(self, job: Job) -> bool:
        """Whether `job` has webhooks at all: checked first, so a pool without them builds no
        event for `notify` (no cost per job)."""

    async def notify(
        self, job: Job, event: StateEvent | CompletedEvent | FailedEvent | CancelledEvent
    ) -> None: ...

    def known(self, job_id: str) -> Job | None:
        """A job this process notified about and still remembers (bounded), else None."""


class NoNotifier:
    """No webhooks configured: nothing to do, at no cost."""

    def wants(self, job: Job) -> bool:
        return False

    async def notify(
        self, job: Job, event: StateEvent | CompletedEvent | FailedEvent | CancelledEvent
    ) -> None:
        return None

    def known(self, job_id: str) -> Job | None:
        return None


NO_NOTIFIER: JobNotifier = NoNotifier()


class Subscription(Protocol):
    """Live events of one job, from the moment of subscribing; bounded."""

    def __aiter__(self) -> AsyncIterator[JobEvent]: ...

    def pending(self) -> list[JobEvent]:
        """Events already buffered, without waiting."""


class ServiceBackend(Protocol):
    """What every role's process offers its probes and ops port: lifecycle, health, numbers.

    A worker-only process is one of these and no more: it takes no client requests."""

    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def drain(self, timeout: float) -> None:
        """Stop taking jobs; let running ones finish within `timeout` (SIGTERM)."""

    async def stats(self) -> BackendStats: ...

    async def dead_letters(self, limit: int = 100, tenant: str | None = None) -> list[JobRecord]:
        """The newest dead-lettered jobs, of one tenant if given."""

    async def health(self) -> Health: ...


class JobBackend(ServiceBackend, Protocol):
    """A process that serves clients: the service side plus jobs."""

    admission: Admission
    """This process's per-tenant submit limits and rate buckets (ffpool/backends/tenancy.py)."""

    async def submit(self, job: Job) -> Submission:
        """Queue a job; raises QueueFull/BackendUnavailable/BackendBusy. A job whose id (from
        an idempotency key) is already known is not queued twice: `duplicate=True`."""

    async def cancel(self, job_id: str) -> JobRecord:
        """Cancel a queued or running job; raises UnknownJob."""

    async def get(self, job_id: str) -> JobRecord | None: ...

    async def jobs(
        self, tenant: str | None, limit: int = 100, states: frozenset[JobState] | None = None
    ) -> list[JobSummary]:
        """The newest jobs first, of `tenant` if given (a record whose tenant is not known is
        never listed for one), in `states` if given; never chunk sub-jobs (domain/listing.py)."""

    def subscribe(self, job_id: str) -> AbstractAsyncContextManager[Subscription]:
        """Live events of a job; enter it before reading the snapshot so nothing is missed."""

    async def active_jobs(self, tenant: str) -> int:
        """The tenant's queued and running jobs, as far as this server can tell (pool-wide)."""

    def tenant_of(self, job_id: str) -> str | None:
        """Whose job it is, from what this server holds now (no I/O); None: not known here."""
