"""Tenancy: one tenant's view of a job backend, and job ids derived from idempotency keys.

API for the server edge:

    scoped(backend: JobBackend, tenant: str) -> JobBackend
        Limits come from the backend itself (`backend.admission`, built from Settings:
        TENANT_MAX_ACTIVE_JOBS, TENANT_SUBMITS_PER_SECOND); cheap, holds no state of its own,
        so call it per connection or per request.
        submit raises ffpool.backends.base.TooManyJobs (code "too_many_jobs") or RateLimited
        (code "rate_limited", `.retry_after_s`); both are BackendError subclasses.
    keyed_job_id(key: str, spec: JobSpec, tenant: str, secret: bytes) -> str

Another tenant's job answers exactly like an unknown one: `get` → None, `cancel` → UnknownJob
with the very message of an unknown id, `subscribe` → no events. A record whose tenant this
server does not know is nobody's (backends learn it from the job's files or a peer).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from ffpool.backends.admission import Admission
from ffpool.backends.base import (
    BackendError,
    BackendStats,
    Health,
    JobBackend,
    RateLimited,
    Submission,
    Subscription,
    TooManyJobs,
    UnknownJob,
)
from ffpool.domain.events import JobEvent, JobRecord, JobState
from ffpool.domain.jobs import Job, JobSpec
from ffpool.domain.listing import JobSummary


def keyed_job_id(key: str, spec: JobSpec, tenant: str, secret: bytes) -> str:
    """The job id for an idempotency key: HMAC-SHA256 with the pool's secret (SIGNING_KEY_FILE)
    over tenant, key and spec, cut to 32 hex digits like random ids. Every replica holding the
    secret derives the same id; without the secret it cannot be guessed even from a guessable
    key; the same key under two tenants, or with another job, is another job."""
    message = json.dumps([tenant, key, spec.model_dump(mode="json")], separators=(",", ":"))
    return hmac.new(secret, message.encode(), hashlib.sha256).hexdigest()[:32]


def unknown(job_id: str) -> UnknownJob:
    """The one error an unknown id and another tenant's id both get."""
    return UnknownJob(f"no job {job_id}")


def scoped(backend: JobBackend, tenant: str) -> JobBackend:
    return TenantBackend(backend, tenant)


class TenantBackend:
    """A JobBackend limited to one tenant's jobs (module docstring)."""

    def __init__(self, backend: JobBackend, tenant: str) -> None:
        self._backend = backend
        self.tenant = tenant
        self.name = backend.name
        self.admission: Admission = backend.admission

    async def start(self) -> None:
        """The shared backend is started and stopped by its owner, not through a view."""

    async def stop(self) -> None:
        """See `start`."""

    async def drain(self, timeout: float) -> None:
        """See `start`."""

    async def submit(self, job: Job) -> Submission:
        if job.tenant != self.tenant:
            raise ValueError(f"a job of tenant {job.tenant!r} submitted as {self.tenant!r}")
        if self._backend.tenant_of(job.id) is not None:
            # A keyed job resubmitted (keyed ids include the tenant): a duplicate, no limit.
            # No I/O to find out: a random id is always new.
            return await self._submit(job)
        limits = self.admission.limits
        if await self._backend.active_jobs(self.tenant) >= limits.max_active_jobs:
            raise TooManyJobs(
                f"{limits.max_active_jobs} jobs of this tenant are queued or running, its limit"
            )
        if (wait_s := self.admission.take(self.tenant)) > 0:
            raise RateLimited(
                f"more than {limits.submits_per_second:g} submits per second; retry in "
                f"{wait_s:.2f} s",
                wait_s,
            )
        return await self._submit(job)

    async def _submit(self, job: Job) -> Submission:
        submission = await self._backend.submit(job)
        if submission.record.tenant not in (None, self.tenant):
            raise BackendError("job id taken by another job")  # 128-bit ids: never in practice
        return submission

    async def cancel(self, job_id: str) -> JobRecord:
        if await self.get(job_id) is None:
            raise unknown(job_id)
        return await self._backend.cancel(job_id)

    async def get(self, job_id: str) -> JobRecord | None:
        record = await self._backend.get(job_id)
        return record if record is not None and record.tenant == self.tenant else None

    async def jobs(
        self, tenant: str | None, limit: int = 100, states: frozenset[JobState] | None = None
    ) -> list[JobSummary]:
        if tenant not in (None, self.tenant):
            return []
        return await self._backend.jobs(self.tenant, limit, states)

    def subscribe(self, job_id: str) -> AbstractAsyncContextManager[Subscription]:
        return self._subscribe(job_id)

    @asynccontextmanager
    async def _subscribe(self, job_id: str) -> AsyncIterator[Subscription]:
        # Entered before the job may exist (a client follows its own job before submitting
        # it), so ownership is decided per event, not here.
        async with self._backend.subscribe(job_id) as inner:
            yield _Filtered(inner, self)

    async def stats(self) -> BackendStats:
        return await self._backend.stats()

    async def dead_letters(self, limit: int = 100, tenant: str | None = None) -> list[JobRecord]:
        if tenant not in (None, self.tenant):
            return []
        return await self._backend.dead_letters(limit, self.tenant)

    async def active_jobs(self, tenant: str) -> int:
        return await self._backend.active_jobs(tenant) if tenant == self.tenant else 0

    def tenant_of(self, job_id: str) -> str | None:
        owner = self._backend.tenant_of(job_id)
        return owner if owner == self.tenant else None

    async def health(self) -> Health:
        return await self._backend.health()

    async def owns(self, job_id: str) -> bool:
        """Whether the job is this tenant's: from what the server holds, else asked (I/O)."""
        owner = self._backend.tenant_of(job_id)
        if owner is None:
            record = await self._backend.get(job_id)
            owner = record.tenant if record is not None else None
        return owner == self.tenant


class _Filtered:
    """A subscription passing only the tenant's events; another tenant's job stays silent."""

    def __init__(self, inner: Subscription, view: TenantBackend) -> None:
        self._inner = inner
        self._view = view

    async def __aiter__(self) -> AsyncIterator[JobEvent]:
        async for event in self._inner:
            if await self._view.owns(event.job_id):
                yield event

    def pending(self) -> list[JobEvent]:
        return [e for e in self._inner.pending() if self._view.tenant_of(e.job_id) is not None]
