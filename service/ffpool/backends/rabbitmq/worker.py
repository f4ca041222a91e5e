"""The worker side: runs jobs, and takes no client requests.

Its connection, `ffpool-worker:<instance>`, consumes the job queue, one channel per slot; it
holds the unacked deliveries, which is how the operator sees which worker pod is busy. A worker
alone (`ffpool worker`) also listens for cancel broadcasts on it, and still answers the probes
and the ops port (health, queue depth, dead letters).
"""

from __future__ import annotations

from aio_pika.abc import AbstractRobustConnection

from ffpool import logs
from ffpool.backends.base import BackendStats, Health
from ffpool.backends.rabbitmq import attempts, broker_limits
from ffpool.backends.rabbitmq.control import Control
from ffpool.backends.rabbitmq.links import Links
from ffpool.backends.rabbitmq.server import NAME, dead_lettered, dead_letters, queued_jobs
from ffpool.backends.rabbitmq.subjobs import RabbitSubJobs
from ffpool.backends.rabbitmq.worker_pool import WorkerPool
from ffpool.chunks.subjobs import SubJobs
from ffpool.domain.events import JobRecord
from ffpool.settings import Settings
from ffpool.topology import Topology

log = logs.get(__name__)


class RabbitWorker:
    """`ffpool worker`: what the process needs (start, stop, drain, health, busy_jobs), and the
    numbers its ops port shows; not a JobBackend."""

    name = NAME

    def __init__(
        self, settings: Settings, links: Links, control: Control, pool: WorkerPool
    ) -> None:
        self._settings = settings
        self._links = links
        self._control = control
        self._pool = pool
        self._topo = Topology.from_settings(settings)
        self._url = settings.rabbitmq_url.get_secret_value()
        self._drained = False

    async def start(self) -> None:
        (conn,) = await self._links.open()
        await self._control.start(conn)
        await self.attach(conn)

    async def attach(self, conn: AbstractRobustConnection) -> None:
        """Start the slots on `conn`, within the broker's consumer timeout."""
        job_timeout = self._settings.job_timeout_seconds
        timeout = self._settings.broker_timeout_seconds
        limits = await broker_limits.detect(self._url, job_timeout, timeout)
        limit_s = attempts.run_limit(job_timeout, limits.consumer_timeout_ms)
        count = self._settings.max_concurrent_jobs
        log.info("RabbitMQ connected, starting workers", workers=count)
        await self._pool.start(conn, count, limit_s if limit_s < job_timeout else None)

    async def drain(self, timeout: float) -> None:
        """SIGTERM: stop taking jobs at once, let running ones finish within `timeout`, then
        stop FFmpeg and hand the unfinished jobs back to the queue (never the DLQ)."""
        if not self._drained:
            self._drained = True
            await self._pool.drain(timeout)

    async def stop(self) -> None:
        await self.drain(0)
        await self._links.close()

    def busy_jobs(self) -> int:
        return self._pool.busy_jobs()

    def subjobs(self) -> SubJobs:
        """What a chunked run needs of this worker's backend (subjobs.py); usable once
        started."""
        return RabbitSubJobs(
            self._pool,
            self._links.publisher,
            self._control,
            self._topo,
            lambda: self._pool.conn,
            self._settings.broker_timeout_seconds,
        )

    async def health(self) -> Health:
        return self._links.health()

    async def stats(self) -> BackendStats:
        return BackendStats(
            total_jobs=0,
            active_jobs=self.busy_jobs(),
            queued_jobs=await queued_jobs(self._links.publisher, self._topo),
            max_concurrent=self._settings.max_concurrent_jobs,
            backend=NAME,
            dead_letters=await dead_lettered(self._links.publisher, self._topo),
        )

    async def dead_letters(self, limit: int = 100, tenant: str | None = None) -> list[JobRecord]:
        return await dead_letters(self._links.publisher, self._topo, limit, tenant)
