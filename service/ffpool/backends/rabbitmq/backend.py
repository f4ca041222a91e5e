"""The RabbitMQ JobBackend: durable jobs, workers anywhere, events back to any server.

Connections of one process, named for the management API (`client_properties`):
- publishing: jobs, outcomes, events, control (named after the process's role);
- `ffpool-server:<instance>` consuming its events, dead-letter watch and control queues;
- `ffpool-worker:<instance>` consuming the job queue, one channel per slot; this connection holds
  the unacked deliveries, which is how the operator sees which worker pod is busy.
"""

from __future__ import annotations

import asyncio
import math
import random
from contextlib import AbstractAsyncContextManager

import aio_pika
import aiormq
from aio_pika.abc import AbstractRobustConnection

from ffpool import logs, names
from ffpool.backends.admission import Admission, TenantLimits
from ffpool.backends.base import (
    BackendError,
    BackendStats,
    BackendUnavailable,
    Health,
    Submission,
    UnknownJob,
)
from ffpool.backends.hub import Subscription
from ffpool.backends.rabbitmq import attempts, broker_limits, connection, records
from ffpool.backends.rabbitmq.control import Control
from ffpool.backends.rabbitmq.feed import EventsFeed
from ffpool.backends.rabbitmq.job_run import ExecutorLike, MetricsLike
from ffpool.backends.rabbitmq.markers import Markers
from ffpool.backends.rabbitmq.publisher import Publisher
from ffpool.backends.rabbitmq.worker_pool import WorkerPool
from ffpool.backends.retention import RetainedBytes
from ffpool.domain.events import CancelledEvent, JobRecord, JobState
from ffpool.domain.jobs import Job
from ffpool.settings import Settings
from ffpool.topology import Topology

log = logs.get(__name__)
# How long a server waits for another server to answer "do you know job X?".
LOOKUP_WAIT_S = 0.5
# How many dead letters are read to find one tenant's newest (the DLQ is shared).
DEAD_LETTER_SCAN = 1000
_CONNECT_ERRORS = (OSError, aio_pika.exceptions.AMQPError, aiormq.exceptions.AMQPError)


class RabbitBackend:
    name = "RabbitMQ"

    def __init__(
        self,
        settings: Settings,
        metrics: MetricsLike,
        executor: ExecutorLike | None,
        *,
        serve_clients: bool = True,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._executor = executor
        self._topo = Topology.from_settings(settings)
        self._url = settings.rabbitmq_url.get_secret_value()
        self._timeout = settings.broker_timeout_seconds
        instance = settings.instance_name
        self._server_name = names.SERVER_CONNECTION_PREFIX + instance
        self._worker_name = names.WORKER_CONNECTION_PREFIX + instance
        role_name = self._server_name if serve_clients else self._worker_name
        self._publisher = Publisher(self._url, role_name, self._topo, self._timeout)
        self._markers = Markers(settings.media_root)
        self._feed = (
            EventsFeed(self._topo, instance, self._timeout, settings.max_retained_jobs,
                       on_dead_letter=self._markers.mark_failed,
                       outcomes=self._markers.outcomes,
                       retained=RetainedBytes.from_settings(settings))
            if serve_clients
            else None
        )  # fmt: skip
        self._pool: WorkerPool | None = None
        self._control: Control | None = None
        self._conns: list[AbstractRobustConnection] = []
        self._drained = False
        self.admission = Admission(TenantLimits.from_settings(settings))

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        log.info(f"Connecting to RabbitMQ at {logs.mask_url(self._url)}")
        server_conn, worker_conn = await self._connect_all()
        if self._executor is not None:
            self._pool = await self._make_pool(self._executor)
        if self._feed is not None and server_conn is not None:
            await self._feed.start(server_conn)
        self._control = Control(
            self._publisher,
            self._topo,
            self._settings.instance_name,
            self._timeout,
            on_cancel=self._pool.cancel if self._pool else None,
            answer=self._answer if self._feed else None,
        )
        if self._pool is not None:
            self._pool.lookup = self._lookup
        control_conn = server_conn or worker_conn
        if control_conn is not None:
            await self._control.start(control_conn)
        if self._pool is not None and worker_conn is not None:
            count = self._settings.max_concurrent_jobs
            log.info(f"RabbitMQ connected - Starting {count} workers")
            await self._pool.start(worker_conn, count)
        else:
            log.info("RabbitMQ connected")

    async def _connect_all(
        self,
    ) -> tuple[AbstractRobustConnection | None, AbstractRobustConnection | None]:
        """The publisher's, server's and worker's connections; while the broker is unreachable
        retried with back-off for `broker_startup_wait_seconds`, then BackendUnavailable."""
        wait_s = self._settings.broker_startup_wait_seconds
        if wait_s is None:
            wait_s = 0.0 if self._feed is not None else math.inf
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        failures = 0
        while True:
            try:
                await self._publisher.start()
                server_conn = await self._connect(self._server_name) if self._feed else None
                worker_conn = await self._connect(self._worker_name) if self._executor else None
                return server_conn, worker_conn
            except _CONNECT_ERRORS as exc:
                await self.stop()
                failures += 1
                delay = connection.backoff_s(failures, random.random())  # noqa: S311 - jitter
                reason = f"cannot reach RabbitMQ at {logs.mask_url(self._url)}"
                if loop.time() + delay > deadline:
                    raise BackendUnavailable(f"{reason}: {type(exc).__name__}") from exc
                log.warning(f"{reason}, retrying", retry_in_s=round(delay, 2),
                            error=type(exc).__name__)  # fmt: skip
                await asyncio.sleep(delay)

    async def _connect(self, conn_name: str) -> AbstractRobustConnection:
        conn = await connection.connect(self._url, conn_name, self._timeout)
        self._conns.append(conn)
        return conn

    async def _make_pool(self, executor: ExecutorLike) -> WorkerPool:
        job_timeout = self._settings.job_timeout_seconds
        limits = await broker_limits.detect(self._url, job_timeout, self._timeout)
        limit_s = attempts.run_limit(job_timeout, limits.consumer_timeout_ms)
        return WorkerPool(
            self._settings,
            self._topo,
            self._publisher,
            executor,
            self._metrics,
            limit_s if limit_s < job_timeout else None,
        )

    async def drain(self, timeout: float) -> None:
        """SIGTERM: stop taking jobs at once, let running ones finish within `timeout`, then
        stop FFmpeg and hand the unfinished jobs back to the queue (never the DLQ)."""
        if self._pool is not None and not self._drained:
            self._drained = True
            await self._pool.drain(timeout)

    async def stop(self) -> None:
        await self.drain(0)
        if self._feed is not None:
            await self._feed.stop()
        for conn in reversed(self._conns):
            await connection.close_quietly(conn, self._timeout)
        self._conns.clear()
        await self._publisher.stop()

    def busy_jobs(self) -> int:
        return self._pool.busy_jobs() if self._pool else 0

    # --- JobBackend --------------------------------------------------------------------------

    async def submit(self, job: Job) -> Submission:
        feed = self._require_feed()
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
        except (BackendError, TimeoutError) as exc:
            log.debug("queued event not published", job_id=job.id, error=type(exc).__name__)

    async def cancel(self, job_id: str) -> JobRecord:
        record = await self.get(job_id)
        if record is None:
            raise UnknownJob(f"no job {job_id}")
        if record.state.terminal or self._control is None:
            return record
        await self._control.broadcast_cancel(job_id)
        if record.state is JobState.QUEUED:
            # No worker holds it: mark it so whichever worker dequeues it skips it.
            await self._markers.mark_cancelled(job_id)
            event = CancelledEvent(job_id=job_id)
            await self._publisher.publish_event(event, confirm=True)
            self._require_feed().ingest(event)
        return self._require_feed().cache.get(job_id) or record

    async def get(self, job_id: str) -> JobRecord | None:
        if self._feed is None:
            return None
        record = self._feed.cache.get(job_id)
        if record is None or record.tenant is None:
            # Unknown here, or known from its outcome alone (whose tenant is not known here).
            # A live server's record is the freshest (running, progress); the job's files
            # answer when no server knows it (its accepting server died, or all restarted).
            found = await self._control.lookup(job_id, LOOKUP_WAIT_S) if self._control else None
            found = found or await self._markers.record(job_id)
            if found is not None:
                record = self._feed.remember(found)
        return record

    def _answer(self, job_id: str) -> JobRecord | None:
        """A lookup's answer: a record whose tenant is not known here would be nobody's."""
        record = self._feed.cache.get(job_id) if self._feed else None
        return record if record is not None and record.tenant is not None else None

    def tenant_of(self, job_id: str) -> str | None:
        record = self._feed.cache.get(job_id) if self._feed else None
        return record.tenant if record is not None else None

    async def active_jobs(self, tenant: str) -> int:
        feed = self._require_feed()
        if feed.active.count(tenant) >= self.admission.limits.max_active_jobs:
            await feed.settle_active(tenant)
        return feed.active.count(tenant)

    async def _lookup(self, job_id: str) -> JobRecord | None:
        """A job's record for a worker that got a possible duplicate: local, else asked."""
        local = self._feed.cache.get(job_id) if self._feed else None
        if local is not None or self._control is None:
            return local
        return await self._control.lookup(job_id, LOOKUP_WAIT_S)

    def subscribe(self, job_id: str) -> AbstractAsyncContextManager[Subscription]:
        return self._require_feed().hub.subscribe(job_id)

    async def stats(self) -> BackendStats:
        try:
            queued = await self._publisher.queue_depth(self._topo.job_queue)
        except Exception as exc:
            log.debug("queue depth unavailable", error=type(exc).__name__)
            queued = 0
        feed = self._feed
        return BackendStats(
            total_jobs=len(feed.cache) if feed else 0,
            active_jobs=feed.cache.count(JobState.RUNNING) if feed else self.busy_jobs(),
            queued_jobs=queued,
            max_concurrent=self._settings.max_concurrent_jobs,
            backend=self.name,
        )

    async def dead_letters(self, limit: int = 100, tenant: str | None = None) -> list[JobRecord]:
        scan = limit if tenant is None else max(limit, DEAD_LETTER_SCAN)
        found = await self._publisher.peek(self._topo.dlq_queue, scan)
        return attempts.dead_letter_records(found, tenant)[:limit]

    async def health(self) -> Health:
        conns = [self._publisher.conn, *self._conns]
        down = any(connection.link_state_now(c) is connection.LinkState.DOWN for c in conns)
        return Health.UNHEALTHY if down else Health.HEALTHY

    def _require_feed(self) -> EventsFeed:
        if self._feed is None:
            raise BackendUnavailable("this process runs workers only: it takes no client requests")
        return self._feed
