"""Chunk sub-jobs on RabbitMQ: the `SubJobs` protocol (chunks/subjobs.py) on a worker's side.

Chunk jobs are ordinary messages on the job queue (in their parent's priority band; published
with the newer wire major, so no older worker runs one, wire.py), carried by the ordinary
machinery: attempts, redelivery after a worker died, poison → DLQ, all counted on the chunk.
What differs is who hears of them: their events go to the events exchange under their parent's
key (names.chunk_events_key), which only the parent's waiting worker binds (`watch`), never a
server; their outcome is read from their markers (markers.py), written as for any job. A chunk
the broker dead-letters has its failed marker written by the servers' dead-letter watch
(feed.py), but no record a client could see.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from ffpool import logs, names
from ffpool.backends.base import BackendError
from ffpool.backends.rabbitmq import connection, wire
from ffpool.backends.rabbitmq.control import Control
from ffpool.backends.rabbitmq.feed import parse_events
from ffpool.backends.rabbitmq.markers import JobMarkers
from ffpool.backends.rabbitmq.publisher import Publisher
from ffpool.backends.rabbitmq.worker_pool import WorkerPool
from ffpool.chunks.subjobs import SubOutcome
from ffpool.domain.events import FailureCode, ProgressEvent
from ffpool.domain.jobs import Job
from ffpool.ffmpeg.outcome import JobFailure
from ffpool.topology import Topology

log = logs.get(__name__)
OnProgress = Callable[[ProgressEvent], None]
Consumer = Callable[[AbstractIncomingMessage], Awaitable[None]]
FORGET_BATCH = 16  # chunks whose markers are removed at once (bucket requests in flight)


class RabbitSubJobs:
    """`SubJobs` for the worker pool of this process (`RabbitWorker.subjobs()`); usable once
    the worker has started (its connection is open)."""

    def __init__(
        self,
        pool: WorkerPool,
        publisher: Publisher,
        control: Control,
        topo: Topology,
        conn: Callable[[], AbstractRobustConnection | None],
        timeout: float,
    ) -> None:
        self._pool = pool
        self._publisher = publisher
        self._control = control
        self._topo = topo
        self._conn = conn
        self._markers: JobMarkers = pool.markers
        self._timeout = timeout

    async def submit(self, jobs: Sequence[Job]) -> None:
        """Each published with a confirm, at its parent's priority (the job carries it);
        admission is the parent's business. A publish the broker refuses (a full queue:
        QUEUE_MAX_LENGTH, docs/rabbitmq.md) or cannot take fails the parent with
        `resource_limit`, not `internal_error`."""
        if any(job.chunk is None for job in jobs):
            raise ValueError("only chunk jobs are queued as sub-jobs")
        sent = await asyncio.gather(
            *(self._publisher.publish_job(job, 1) for job in jobs), return_exceptions=True
        )
        for result in sent:
            if isinstance(result, BackendError):
                raise JobFailure(FailureCode.RESOURCE_LIMIT, refused(result)) from result
        for result in sent:
            if isinstance(result, BaseException):
                raise result

    async def outcome(self, job_id: str) -> SubOutcome | None:
        found = await self._markers.outcomes([job_id])
        return found[0] if found else None

    def watch(self, parent_id: str, on_progress: OnProgress) -> AbstractAsyncContextManager[None]:
        return self._watch(parent_id, on_progress)

    @asynccontextmanager
    async def _watch(self, parent_id: str, on_progress: OnProgress) -> AsyncIterator[None]:
        """An exclusive, auto-delete queue bound to the parent's chunk events while inside.
        Best effort: without a connection nothing comes (the coordinator reads outcomes from
        the markers either way)."""
        conn = self._conn()
        channel = None
        try:
            if conn is not None:
                channel = await connection.open_channel(
                    conn, self._timeout, publisher_confirms=False
                )
                await self._consume(channel, parent_id, _progress_to(on_progress))
        except Exception as exc:
            log.warning("chunk progress not followed", parent=parent_id, error=type(exc).__name__)
        try:
            yield
        finally:
            if channel is not None:
                try:
                    async with asyncio.timeout(self._timeout):
                        await channel.close()  # its exclusive queue goes with it
                except Exception as exc:
                    log.debug("watch channel not closed", error=type(exc).__name__)

    async def _consume(
        self, channel: AbstractChannel, parent_id: str, on_message: Consumer
    ) -> None:
        exchange = await connection.events_exchange(channel, self._topo, self._timeout)
        queue = await channel.declare_queue(
            f"{self._topo.events_exchange}:chunks:{parent_id}:{uuid.uuid4().hex[:8]}",
            exclusive=True,
            auto_delete=True,
            arguments=connection.server_queue_arguments(),
            timeout=self._timeout,
        )
        key = names.chunk_events_key(parent_id)
        await queue.bind(exchange, routing_key=key, timeout=self._timeout)
        await queue.consume(on_message, no_ack=True, timeout=self._timeout)

    async def cancel(self, job_ids: Sequence[str]) -> None:
        """The cancelled marker first (a worker reads it before running a job: queued ones
        never run), then the broadcast that stops running ones wherever they run."""
        for job_id in job_ids:
            try:
                await self._markers.mark_cancelled(job_id)
                await self._control.broadcast_cancel(job_id)
            except Exception as exc:  # best effort: the coordinator stops waiting either way
                log.warning("chunk cancel not broadcast", job_id=job_id, error=type(exc).__name__)

    def lend_slot(self) -> AbstractAsyncContextManager[None]:
        return self._pool.lend_slot()

    async def capacity(self) -> int:
        """Idle slots: the job queue's consumers (every slot of every worker, lent ones and
        this caller's included) minus the ready messages waiting for one, at least 0; 0 too
        when the broker cannot tell now (ChunkMode.AUTO then runs the job whole).

        With quorum bands a slot consumes on every band only while it waits, and always on
        the lowest one, JOB_QUEUE: its consumers are the waiting slots, and the jobs ready in
        any band are what they will take first (docs/rabbitmq.md, "Quorum queues")."""
        queue = self._topo.job_queue
        try:
            consumers = await self._publisher.consumer_count(queue)
            publisher = self._publisher
            waiting = sum([await publisher.queue_depth(q) for q in self._topo.job_queues()])
        except Exception as exc:  # a passive declare fails in many ways: all mean "unknown"
            log.warning("job queue consumers unknown", error=type(exc).__name__)
            return 0
        return max(0, consumers - waiting)

    async def forget(self, job_ids: Sequence[str]) -> None:
        """Remove these chunk jobs' markers (MEDIA_ROOT/jobs/<id>/, or the bucket's
        <S3_PREFIX>/jobs/<id>/ records): nothing else ever would. Best effort, never raises."""
        for start in range(0, len(job_ids), FORGET_BATCH):
            batch = job_ids[start : start + FORGET_BATCH]
            await asyncio.gather(*(self._remove(job_id) for job_id in batch))

    async def _remove(self, job_id: str) -> None:
        try:
            await self._markers.remove(job_id)
        except Exception as exc:  # best effort: a leftover marker only takes room
            log.warning("chunk markers not removed", job_id=job_id, error=type(exc).__name__)


def refused(exc: BackendError) -> str:
    """What a parent whose chunks the queue did not take fails with (`resource_limit`)."""
    return (
        f"the job queue has no room for this job's chunks now ({exc}); QUEUE_MAX_LENGTH must "
        "leave room for the chunks of running chunked jobs: try again later"
    )


def _progress_to(on_progress: OnProgress) -> Consumer:
    async def on_message(message: AbstractIncomingMessage) -> None:
        if not wire.readable(message.headers):
            return
        for event in parse_events(message.body) or ():
            if isinstance(event, ProgressEvent):
                try:
                    on_progress(event)
                except Exception:  # the watcher's bug must not kill the consumer
                    log.exception("chunk progress watcher failed", job_id=event.job_id)

    return on_message
