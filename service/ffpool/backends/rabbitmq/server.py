"""The server side: takes client requests, answers for jobs from the events every worker sends.

Its connection, `ffpool-server:<instance>`, consumes this server's events, dead-letter watch
and control queues. A server holds the records of the jobs it saw (feed.py), asks the other
servers for one it did not (control.py), and reads a job's files when none knows it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager

from aio_pika.abc import AbstractRobustConnection

from ffpool import logs
from ffpool.backends.admission import Admission, TenantLimits
from ffpool.backends.base import (
    NO_NOTIFIER,
    BackendError,
    BackendStats,
    Health,
    JobMetrics,
    JobNotifier,
    Submission,
    UnknownJob,
)
from ffpool.backends.hub import Subscription
from ffpool.backends.rabbitmq import attempts, records
from ffpool.backends.rabbitmq.control import Control
from ffpool.backends.rabbitmq.feed import EventsFeed
from ffpool.backends.rabbitmq.links import Links
from ffpool.backends.rabbitmq.markers import JobMarkers
from ffpool.backends.rabbitmq.publisher import Publisher
from ffpool.domain.events import CancelledEvent, FailedEvent, JobRecord, JobState, StateEvent
from ffpool.domain.jobs import Job
from ffpool.domain.listing import JobSummary, newest
from ffpool.settings import Settings
from ffpool.topology import Topology

log = logs.get(__name__)
NAME = "RabbitMQ"
# How long a server waits for another server to answer "do you know job X?".
LOOKUP_WAIT_S = 0.5
# How many dead letters are read to find one tenant's newest (the DLQ is shared).
DEAD_LETTER_SCAN = 1000


def answer_from(feed: EventsFeed, job_id: str) -> JobRecord | None:
    """A lookup's answer: a record whose tenant is not known here would be nobody's."""
    record = feed.cache.get(job_id)
    return record if record is not None and record.tenant is not None else None


async def queued_jobs(publisher: Publisher, topo: Topology) -> int:
    """Jobs waiting in every band (the job queue alone for a classic topology)."""
    return sum([await _depth(publisher, queue) for queue in topo.job_queues()])


async def dead_lettered(publisher: Publisher, topo: Topology) -> int:
    return await _depth(publisher, topo.dlq_queue)


async def _depth(publisher: Publisher, queue: str) -> int:
    try:
        return await publisher.queue_depth(queue)
    except Exception as exc:
        log.debug("queue depth unavailable", queue=queue, error=type(exc).__name__)
        return 0


async def dead_letters(
    publisher: Publisher, topo: Topology, limit: int, tenant: str | None
) -> list[JobRecord]:
    scan = limit if tenant is None else max(limit, DEAD_LETTER_SCAN)
    found = await publisher.peek(topo.dlq_queue, scan)
    return attempts.dead_letter_records(found, tenant)[:limit]


def dead_letter_hook(
    mark: Callable[[FailedEvent], Awaitable[None]], notifier: JobNotifier
) -> Callable[[FailedEvent], Awaitable[None]]:
    """A dead letter's failure goes into the job's files (`mark`) and, for a job whose
    webhooks this server queued, to its webhook: a job that expired in the queue has no worker
    to send it. A worker's dead letter was notified by the worker: the same webhook id."""
    if notifier is NO_NOTIFIER:
        return mark

    async def record(failure: FailedEvent) -> None:
        await mark(failure)
        if (job := notifier.known(failure.job_id)) is not None:
            try:
                await notifier.notify(job, failure)
            except (BackendError, TimeoutError) as exc:
                log.warning("webhook not queued", job_id=job.id, error=type(exc).__name__)

    return record


class RabbitServer:
    """`ffpool server`: takes client requests, runs no jobs. A complete JobBackend."""

    name = NAME

    def __init__(
        self,
        settings: Settings,
        metrics: JobMetrics,
        links: Links,
        feed: EventsFeed,
        markers: JobMarkers,
        control: Control,
        notifier: JobNotifier = NO_NOTIFIER,
    ) -> None:
        self._settings = settings
        self._notifier = notifier
        self._metrics = metrics
        self._links = links
        self._publisher = links.publisher
        self._feed = feed
        self._markers = markers
        self._control = control
        self._topo = Topology.from_settings(settings)
        self._timeout = settings.broker_timeout_seconds
        self.admission = Admission(TenantLimits.from_settings(settings))

    async def start(self) -> None:
        (conn,) = await self._links.open()
        await self.attach(conn)
        log.info("RabbitMQ connected")

    async def attach(self, conn: AbstractRobustConnection) -> None:
        """Consume this server's events, dead letters and control traffic on `conn`."""
        await self._feed.start(conn)
        await self._control.start(conn)

    async def drain(self, timeout: float) -> None:
        """No job runs here: nothing to wait for."""

    async def stop(self) -> None:
        await self._feed.stop()
        await self._links.close()

    async def health(self) -> Health:
        return self._links.health()

    async def submit(self, job: Job) -> Submission:
        feed = self._feed
        known = feed.cache.get(job.id)
        if known is None and job.idempotency_key is not None:
            # A keyed job's id is derived from its key: whichever server accepted it before
            # left its accepted record in the job's directory (no waiting on a lookup).
            known = await self._markers.record(job.id)
        if known is not None:
            feed.remember(known)
            return Submission(record=known, duplicate=True)
        await self._publisher.publish_job(job, attempt=1, wait_s=self._timeout)
        self._metrics.observe_submitted()
        if self._notifier.wants(job):
            await self._notify(job, StateEvent.of(job, JobState.QUEUED))
        # The accepted record, before the client hears `accepted`: any server can then answer
        # for the job, also after this one died. No `queued` broadcast (it would cost a
        # publish and a delivery per server per job).
        await self._markers.mark_accepted(job)
        record = feed.remember(JobRecord.queued(job))
        await self._announce(job)
        return Submission(record=record)

    async def _announce(self, job: Job) -> None:
        """`queued` with the tenant to every server, fire-and-forget like a worker's state
        events: each counts a tenant's active jobs (TENANT_MAX_ACTIVE_JOBS) from its cache."""
        try:
            await self._publisher.publish_event(records.queued_event(job), confirm=False)
        except Exception as exc:  # the job is queued: a lost announcement must not fail it
            log.debug("queued event not published", job_id=job.id, error=type(exc).__name__)

    async def _notify(self, job: Job, event: StateEvent | CancelledEvent) -> None:
        """The job is queued (or cancelled) whether or not its webhook could be: a lost
        `queued` webhook costs its receiver one event, failing the submit would cost more."""
        try:
            await self._notifier.notify(job, event)
        except (BackendError, TimeoutError) as exc:
            log.warning("webhook not queued", job_id=job.id, error=type(exc).__name__)

    async def cancel(self, job_id: str) -> JobRecord:
        record = await self.get(job_id)
        if record is None:
            raise UnknownJob(f"no job {job_id}")
        if record.state.terminal:
            return record
        await self._control.broadcast_cancel(job_id)
        if record.state is JobState.QUEUED:
            # No worker holds it: mark it so whichever worker dequeues it skips it.
            await self._markers.mark_cancelled(job_id)
            event = CancelledEvent(job_id=job_id)
            await self._publisher.publish_event(event, confirm=True)
            self._feed.ingest(event)
            # Else the worker that dequeues and skips it notifies (the same webhook id).
            if (job := self._notifier.known(job_id)) is not None:
                await self._notify(job, event)
        return self._feed.cache.get(job_id) or record

    async def get(self, job_id: str) -> JobRecord | None:
        record = self._feed.cache.get(job_id)
        if record is None or record.tenant is None:
            # Unknown here, or known from its outcome alone (whose tenant is not known here).
            # A live server's record is the freshest (running, progress); the job's files
            # answer when no server knows it (its accepting server died, or all restarted).
            found = await self._control.lookup(job_id, LOOKUP_WAIT_S)
            found = found or await self._markers.record(job_id)
            if found is not None:
                record = self._feed.remember(found)
        # An outcome whose event this server missed (it reconnected meanwhile) is in the
        # job's files: read at most every RESYNC_S per job (feed.py).
        return None if record is None else await self._feed.refreshed(record)

    def tenant_of(self, job_id: str) -> str | None:
        record = self._feed.cache.get(job_id)
        return record.tenant if record is not None else None

    async def active_jobs(self, tenant: str) -> int:
        feed = self._feed
        if feed.active.count(tenant) >= self.admission.limits.max_active_jobs:
            await feed.recount_active(tenant)
        return feed.active.count(tenant)

    async def lookup(self, job_id: str) -> JobRecord | None:
        """A job's record for a worker in this process that got a possible duplicate: this
        server's, else asked of the others."""
        local = self._feed.cache.get(job_id)
        if local is not None:
            return local
        return await self._control.lookup(job_id, LOOKUP_WAIT_S)

    def subscribe(self, job_id: str) -> AbstractAsyncContextManager[Subscription]:
        return self._feed.hub.subscribe(job_id)

    async def stats(self) -> BackendStats:
        return BackendStats(
            total_jobs=len(self._feed.cache),
            active_jobs=self._feed.cache.count(JobState.RUNNING),
            queued_jobs=await queued_jobs(self._publisher, self._topo),
            max_concurrent=self._settings.max_concurrent_jobs,
            backend=NAME,
            dead_letters=await dead_lettered(self._publisher, self._topo),
        )

    async def dead_letters(self, limit: int = 100, tenant: str | None = None) -> list[JobRecord]:
        return await dead_letters(self._publisher, self._topo, limit, tenant)

    async def jobs(
        self, tenant: str | None, limit: int = 100, states: frozenset[JobState] | None = None
    ) -> list[JobSummary]:
        """From this server's records, folded from the events exchange: pool-wide, as far
        back as its cache holds (MAX_RETAINED_JOBS). Chunk jobs' events never reach it."""
        return newest(self._feed.cache.records(), tenant, limit, states)
