"""The RabbitMQ backend per role, wired in one place: every part gets its collaborators here.

- `build_server`: `ffpool server`, a JobBackend that runs no jobs (server.py);
- `build_worker`: `ffpool worker`, runs jobs and serves no clients (worker.py);
- `build_node`: `ffpool serve`, the two together in one process.

Connections of one process, named for the management API (`client_properties`):
- publishing: jobs, outcomes, events, control (named after the process's role);
- `ffpool-server:<instance>` consuming its events, dead-letter watch and control queues;
- `ffpool-worker:<instance>` consuming the job queue, one channel per slot; this connection holds
  the unacked deliveries, which is how the operator sees which worker pod is busy.

A process has one control queue: a server answers lookups on it, a worker hears cancels on it
(runs.py holds the runs both sides see, so the control queue and the pool need not know each
other), and a worker asks about possible duplicates through it.
"""

from __future__ import annotations

import functools
import math
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from ffpool import names
from ffpool.backends.admission import Admission
from ffpool.backends.base import (
    NO_NOTIFIER,
    BackendStats,
    Health,
    JobExecutor,
    JobMetrics,
    JobNotifier,
    Submission,
)
from ffpool.backends.hub import Subscription
from ffpool.backends.rabbitmq.bucket_markers import BucketMarkers
from ffpool.backends.rabbitmq.control import Control, Hears
from ffpool.backends.rabbitmq.feed import EventsFeed
from ffpool.backends.rabbitmq.links import Links
from ffpool.backends.rabbitmq.markers import JobMarkers, Markers
from ffpool.backends.rabbitmq.publisher import Publisher
from ffpool.backends.rabbitmq.runs import RunLedger
from ffpool.backends.rabbitmq.server import (
    LOOKUP_WAIT_S,
    NAME,
    RabbitServer,
    answer_from,
    dead_letter_hook,
)
from ffpool.backends.rabbitmq.worker import RabbitWorker
from ffpool.backends.rabbitmq.worker_pool import Lookup, WorkerPool
from ffpool.backends.retention import RetainedBytes
from ffpool.chunks.subjobs import SubJobs
from ffpool.domain.events import JobRecord, JobState
from ffpool.domain.jobs import Job
from ffpool.domain.listing import JobSummary
from ffpool.settings import Settings, StorageKind
from ffpool.storage.objects import ObjectStore
from ffpool.topology import Topology


class RabbitNode:
    """`ffpool serve`: a server and a worker sharing one process's connections."""

    name = NAME

    def __init__(self, server: RabbitServer, worker: RabbitWorker, links: Links) -> None:
        self._server = server
        self._worker = worker
        self._links = links
        self.admission: Admission = server.admission

    async def start(self) -> None:
        server_conn, worker_conn = await self._links.open()
        await self._server.attach(server_conn)
        await self._worker.attach(worker_conn)

    async def drain(self, timeout: float) -> None:
        await self._worker.drain(timeout)

    async def stop(self) -> None:
        await self._worker.drain(0)
        await self._server.stop()

    def busy_jobs(self) -> int:
        return self._worker.busy_jobs()

    def subjobs(self) -> SubJobs:
        """The worker side's (RabbitWorker.subjobs)."""
        return self._worker.subjobs()

    async def health(self) -> Health:
        return await self._server.health()

    async def submit(self, job: Job) -> Submission:
        return await self._server.submit(job)

    async def cancel(self, job_id: str) -> JobRecord:
        return await self._server.cancel(job_id)

    async def get(self, job_id: str) -> JobRecord | None:
        return await self._server.get(job_id)

    def subscribe(self, job_id: str) -> AbstractAsyncContextManager[Subscription]:
        return self._server.subscribe(job_id)

    async def stats(self) -> BackendStats:
        return await self._server.stats()

    async def dead_letters(self, limit: int = 100, tenant: str | None = None) -> list[JobRecord]:
        return await self._server.dead_letters(limit, tenant)

    async def jobs(
        self, tenant: str | None, limit: int = 100, states: frozenset[JobState] | None = None
    ) -> list[JobSummary]:
        return await self._server.jobs(tenant, limit, states)

    async def active_jobs(self, tenant: str) -> int:
        return await self._server.active_jobs(tenant)

    def tenant_of(self, job_id: str) -> str | None:
        return self._server.tenant_of(job_id)


@dataclass(frozen=True)
class _Base:
    """What every role's parts share: settings, topology, names, and the job files."""

    settings: Settings
    topo: Topology
    url: str
    timeout: float
    markers: JobMarkers

    @classmethod
    def of(cls, settings: Settings, objects: ObjectStore | None = None) -> _Base:
        return cls(
            settings,
            Topology.from_settings(settings),
            settings.rabbitmq_url.get_secret_value(),
            settings.broker_timeout_seconds,
            _markers(settings, objects),
        )

    def links(self, consumers: list[str], *, serves_clients: bool, metrics: JobMetrics) -> Links:
        """The publisher is named after the process's role: its first consumer connection."""
        publisher = Publisher(self.url, consumers[0], self.topo, self.timeout)
        wait_s = self.settings.broker_startup_wait_seconds
        if wait_s is None:
            # Serving clients: a clear error beats a silent wait; a worker may start first.
            wait_s = 0.0 if serves_clients else math.inf
        return Links(
            self.url,
            publisher,
            consumers,
            self.timeout,
            wait_s,
            metrics.observe_reconnect,
            self.settings.rabbitmq_addresses,
        )

    def feed(self, notifier: JobNotifier = NO_NOTIFIER) -> EventsFeed:
        s = self.settings
        return EventsFeed(
            self.topo,
            s.instance_name,
            self.timeout,
            s.max_retained_jobs,
            on_dead_letter=dead_letter_hook(self.markers.mark_failed, notifier),
            outcomes=self.markers.outcomes,
            retained=RetainedBytes.from_settings(s),
        )

    def control(self, links: Links, hears: Hears) -> Control:
        s = self.settings
        return Control(links.publisher, self.topo, s.instance_name, self.timeout, hears)

    def worker(
        self,
        links: Links,
        control: Control,
        ledger: RunLedger,
        executor: JobExecutor,
        metrics: JobMetrics,
        lookup: Lookup,
        notifier: JobNotifier = NO_NOTIFIER,
    ) -> RabbitWorker:
        pool = WorkerPool(
            self.settings,
            self.topo,
            links.publisher,
            executor,
            metrics,
            markers=self.markers,
            ledger=ledger,
            lookup=lookup,
            notifier=notifier,
        )
        return RabbitWorker(self.settings, links, control, pool)


def _markers(settings: Settings, objects: ObjectStore | None) -> JobMarkers:
    """The job state records: in the pool's bucket with STORAGE=s3 (no shared volume), else
    files under MEDIA_ROOT."""
    if settings.storage is not StorageKind.S3:
        return Markers(settings.media_root)
    if objects is None:
        raise ValueError("STORAGE=s3 needs an object store")
    return BucketMarkers(objects, settings)


def _server_name(settings: Settings) -> str:
    return names.SERVER_CONNECTION_PREFIX + settings.instance_name


def _worker_name(settings: Settings) -> str:
    return names.WORKER_CONNECTION_PREFIX + settings.instance_name


def build_server(
    settings: Settings,
    metrics: JobMetrics,
    objects: ObjectStore | None = None,
    notifier: JobNotifier = NO_NOTIFIER,
) -> RabbitServer:
    base = _Base.of(settings, objects)
    links = base.links([_server_name(settings)], serves_clients=True, metrics=metrics)
    feed = base.feed(notifier)
    control = base.control(links, Hears(lookup=functools.partial(answer_from, feed)))
    return RabbitServer(settings, metrics, links, feed, base.markers, control, notifier)


def build_worker(
    settings: Settings,
    metrics: JobMetrics,
    executor: JobExecutor,
    objects: ObjectStore | None = None,
    notifier: JobNotifier = NO_NOTIFIER,
) -> RabbitWorker:
    base = _Base.of(settings, objects)
    links = base.links([_worker_name(settings)], serves_clients=False, metrics=metrics)
    ledger = RunLedger()
    control = base.control(links, Hears(cancel=ledger.cancel))
    lookup = functools.partial(control.lookup, wait_s=LOOKUP_WAIT_S)
    return base.worker(links, control, ledger, executor, metrics, lookup, notifier)


def build_node(
    settings: Settings,
    metrics: JobMetrics,
    executor: JobExecutor,
    objects: ObjectStore | None = None,
    notifier: JobNotifier = NO_NOTIFIER,
) -> RabbitNode:
    base = _Base.of(settings, objects)
    links = base.links(
        [_server_name(settings), _worker_name(settings)], serves_clients=True, metrics=metrics
    )
    feed = base.feed(notifier)
    ledger = RunLedger()
    control = base.control(
        links, Hears(cancel=ledger.cancel, lookup=functools.partial(answer_from, feed))
    )
    server = RabbitServer(settings, metrics, links, feed, base.markers, control, notifier)
    worker = base.worker(links, control, ledger, executor, metrics, server.lookup, notifier)
    return RabbitNode(server, worker, links)
