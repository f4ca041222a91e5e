"""A server's view of every job: the events exchange folded into a bounded record cache.

Each server binds its own events queue to the events exchange (`*`: every one-word routing
key, not chunk jobs' `chunk.<parent>`, names.chunk_events_key), so progress and outcomes
reach whichever server holds the client's WebSocket, and every server can answer
`get`/`subscribe` for jobs submitted elsewhere.

That events queue is durable with an idle expiry rather than exclusive: when the broker
restarts or the network drops, outcomes that workers publish before this server has
reconnected wait in its queue instead of being dropped; a server that dies for good leaves a
queue the broker deletes after `SERVER_QUEUE_EXPIRES_MS`. On a broker cluster it is exclusive
instead, so a node's death cannot leave the server deaf (docs/rabbitmq.md, "Broker clusters");
after each reconnect the outcomes of every unfinished job held here are read from their files.

Each server also watches the dead letters as they happen (a second such queue bound to
the job exchange with the DLQ's routing key; the durable DLQ keeps its own copy). A job the
broker dead-letters by itself, e.g. a requeued job whose original TTL ran out, never reached a
worker that could report it: the watcher turns its `x-death` into a `failed` event (`expired`),
so no job disappears without a trace. In quorum mode the watch is a durable quorum queue with
the idle expiry, also on a cluster: dead letters wait for their server. A chunk job (a
parent's sub-job, chunks/subjobs.py) gets no record here: only its failed marker, read by its
waiting parent.

Events are transient (publisher.py), so a broker restart drops those it still held, and with
them maybe the outcome a client waits for. Every outcome is also on disk (markers.py): every
`RESYNC_S` the feed reads the files of the jobs followed here that have no outcome yet, and
hands any it finds to their subscribers. A client waits at most that long after a lost event.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence

from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection
from pydantic import TypeAdapter

from ffpool import logs
from ffpool.backends.admission import ActiveIndex
from ffpool.backends.hub import EventHub
from ffpool.backends.rabbitmq import attempts, connection, records, wire
from ffpool.backends.rabbitmq.records import RecordCache
from ffpool.backends.retention import RetainedBytes
from ffpool.domain.events import FailedEvent, JobEvent, JobRecord, StateEvent
from ffpool.topology import Topology

log = logs.get(__name__)
RESYNC_S = 2.0
RESYNC_BATCH = 200  # unfinished jobs whose files one read covers after a reconnect
CHECKED_MAX = 10_000  # jobs whose last `refreshed` read is remembered (bounded memory)
_event_adapter: TypeAdapter[JobEvent] = TypeAdapter(JobEvent)
_batch_adapter: TypeAdapter[list[JobEvent]] = TypeAdapter(list[JobEvent])


def parse_event(body: bytes) -> JobEvent | None:
    """Fields a newer minor wire version added are ignored (wire.py)."""
    return wire.parse(_event_adapter, body)


def parse_events(body: bytes) -> list[JobEvent] | None:
    """One event, or a worker's batch of them (a JSON array, see outbox.py); None if the
    message is not valid as a whole: a batch is published by one worker in one piece."""
    if not body.lstrip().startswith(b"["):
        event = parse_event(body)
        return None if event is None else [event]
    return wire.parse(_batch_adapter, body)


class EventsFeed:
    def __init__(
        self,
        topo: Topology,
        instance: str,
        timeout: float,
        capacity: int,
        *,
        on_dead_letter: Callable[[FailedEvent], Awaitable[None]],
        outcomes: Callable[[list[str]], Awaitable[Sequence[JobEvent]]],
        retained: RetainedBytes | None = None,
    ) -> None:
        self._on_dead_letter_seen = on_dead_letter
        self._outcomes = outcomes
        self._resync: asyncio.Task[None] | None = None
        self._catch_up: asyncio.Task[int] | None = None
        self._checked: dict[str, float] = {}  # job → when `refreshed` last read its files
        self._topo = topo
        self._instance = instance
        self._timeout = timeout
        self.cache = RecordCache(capacity, retained)
        self.hub = EventHub()
        self.active = ActiveIndex()
        self._recounted: dict[str, float] = {}  # tenant → when its count was last redone
        self._queues: list[AbstractQueue] = []

    async def start(self, conn: AbstractRobustConnection) -> None:
        channel = await connection.open_channel(conn, self._timeout)
        token = uuid.uuid4().hex[:8]
        # On a cluster a durable classic queue is tied to its node, and redeclaring it on a
        # survivor fails while that node is down: exclusive, it goes with its connection (or
        # node) and the robust channel declares it again on the survivor; events lost
        # meanwhile are read from the jobs' files (`_reconnected`, resync_forever). Exclusive
        # rather than merely non-durable: RabbitMQ 4.3 refuses transient non-exclusive queues.
        cluster = connection.cluster_mode(conn, self._topo)
        exchange = await connection.events_exchange(channel, self._topo, self._timeout)
        events = await channel.declare_queue(
            f"{self._topo.events_exchange}:{self._instance}:{token}",
            durable=not cluster,
            exclusive=cluster,
            arguments=connection.server_queue_arguments(expires=True),
            timeout=self._timeout,
        )
        await events.bind(exchange, routing_key="*", timeout=self._timeout)
        await events.consume(self._on_event, no_ack=True, timeout=self._timeout)
        jobs = await channel.get_exchange(self._topo.job_exchange, ensure=False)
        watch = await channel.declare_queue(
            f"{self._topo.dlq_queue}:watch:{self._instance}:{token}",
            **connection.watch_queue(cluster, quorum=self._topo.quorum),
            timeout=self._timeout,
        )
        await watch.bind(jobs, routing_key=self._topo.dlq_queue, timeout=self._timeout)
        await watch.consume(self._on_dead_letter, no_ack=True, timeout=self._timeout)
        self._queues = [events, watch]
        if (callbacks := getattr(conn, "reconnect_callbacks", None)) is not None:  # a robust one
            callbacks.add(self._reconnected)
        if self._resync is None:
            self._resync = asyncio.create_task(self.resync_forever(self._outcomes, RESYNC_S))

    def _reconnected(self, *_: object) -> None:
        """Events published while this connection was down are lost to it (an exclusive
        events queue): read the outcomes of every unfinished job held here from their files."""
        if self._catch_up is None or self._catch_up.done():
            self._catch_up = asyncio.create_task(self.resync_unfinished())

    async def resync_unfinished(self) -> int:
        """Outcomes of every unfinished record, RESYNC_BATCH jobs per read; how many found."""
        ids = [r.job_id for r in self.cache.records() if not r.state.terminal]
        found = 0
        for start in range(0, len(ids), RESYNC_BATCH):
            try:
                events = await self._outcomes(ids[start : start + RESYNC_BATCH])
            except OSError as exc:
                log.warning("job files unreadable", error=str(exc))
                continue
            for event in events:
                self.ingest(event)
            found += len(events)
        log.info("resynced after a reconnect", unfinished=len(ids), outcomes=found)
        return found

    async def refreshed(self, record: JobRecord) -> JobRecord:
        """An unfinished record, with its outcome from the job's files if they have one: read
        at most every RESYNC_S per job (a client polling `GET /jobs/ID` of a job whose event
        was lost learns the outcome within that)."""
        if record.state.terminal:
            return record
        now = asyncio.get_running_loop().time()
        if now - self._checked.get(record.job_id, -RESYNC_S) < RESYNC_S:
            return record
        if len(self._checked) >= CHECKED_MAX:  # a bound: at worst one more read per job
            self._checked.clear()
        self._checked[record.job_id] = now
        try:
            for event in await self._outcomes([record.job_id]):
                self.ingest(event)
        except OSError as exc:
            log.warning("job files unreadable", error=str(exc))
        return self.cache.get(record.job_id) or record

    async def stop(self) -> None:
        """Delete this server's queues (a crashed server's expire by themselves)."""
        for task in (self._resync, self._catch_up):
            if task is not None:
                task.cancel()
        self._resync = self._catch_up = None
        for queue in self._queues:
            try:  # bounded: a robust channel waits for its connection without limit
                async with asyncio.timeout(self._timeout):
                    await queue.delete(if_unused=False, if_empty=False)
            except Exception as exc:  # the broker may be gone: the queue expires then
                log.debug("events queue not deleted", error=type(exc).__name__)
        self._queues = []

    def ingest(self, event: JobEvent) -> JobRecord | None:
        """Fold an event into the cache and hand it to this server's subscribers."""
        before = self.cache.get(event.job_id)
        if _adds_nothing(before, event):
            return before  # e.g. the accepting server hearing its own `queued` announcement
        record = self.cache.fold(event)
        if record is not None:
            self.active.track(record)
        # A job still unknown here is forwarded too: a fast worker's first progress can arrive
        # before the submitting server, still awaiting its confirm, has recorded the job, and
        # its client subscribed before submitting.
        # A state event the fold ignored as stale is not forwarded either: the accepting
        # server's `queued` announcement can arrive after a worker's `running`, and a client
        # must never see its job go back to queued when it did not.
        stale = isinstance(event, StateEvent) and before is not None and record is before
        if (before is None or not before.state.terminal) and not stale:
            self.hub.publish(event)
        return record

    def waiting(self) -> list[str]:
        """Jobs followed here with no outcome known here yet."""
        return [j for j in self.hub.subscribed() if not _terminal(self.cache.get(j))]

    async def resync_forever(
        self, outcomes: Callable[[list[str]], Awaitable[Sequence[JobEvent]]], every_s: float
    ) -> None:
        """Outcomes whose events were lost, read from the jobs' files (module docstring)."""
        while True:
            await asyncio.sleep(every_s)
            if not (waiting := self.waiting()):
                continue
            try:
                found = await outcomes(waiting)
            except OSError as exc:
                log.warning("job files unreadable", error=str(exc))
                continue
            for event in found:
                log.info("outcome read from the job's files", job_id=event.job_id)
                self.ingest(event)

    def remember(self, record: JobRecord) -> JobRecord:
        """A record learned from another server (lookup), the job's files or a local
        submission; the one now held (a record held already only learns what it lacks)."""
        held = self.cache.get(record.job_id)
        if held is not None:
            if (learned := records.learn(held, record)) is held:
                return held
            record = learned
        self.cache.put(record)
        held = self.cache.get(record.job_id) or record  # as kept (cut to MAX_RECORD_BYTES)
        self.active.track(held)
        return held

    async def recount_active(self, tenant: str) -> None:
        """Count a tenant's jobs anew: forget evicted records, and read the outcomes of its
        unfinished ones from their files (a terminal event lost to a broker restart would
        otherwise count against the tenant until the record is evicted)."""
        now = asyncio.get_running_loop().time()
        last = self._recounted.get(tenant)
        if last is not None and now - last < RESYNC_S:
            return  # at most every RESYNC_S: a tenant at its limit submits again and again
        self._recounted[tenant] = now
        self.active.prune(tenant, self.cache.get)
        if ids := self.active.ids(tenant):
            for event in await self._outcomes(ids):
                self.ingest(event)

    async def _on_event(self, message: AbstractIncomingMessage) -> None:
        if not wire.readable(message.headers):
            # Advisory: an outcome missed here is read from the job's files (resync_forever).
            wire.warn_unreadable("an event", message.headers)
            return
        if (events := parse_events(message.body)) is None:
            log.warning("ignored a malformed event", routing_key=message.routing_key)
            return
        for event in events:
            self.ingest(event)

    async def _on_dead_letter(self, message: AbstractIncomingMessage) -> None:
        if not wire.readable(message.headers):
            # The durable DLQ keeps its copy for a newer server's /dead-letters.
            wire.warn_unreadable("a dead letter", message.headers)
            return
        if (job := attempts.parse_job(message.body)) is None:
            return
        failure = attempts.dead_letter_failure(job.id, message.headers)
        log.info(
            "job dead-lettered",
            job_id=job.id,
            code=failure.code.value,
            chunk=job.chunk is not None,
            # The broker's own reason, if it dead-lettered the job: `expired`, or a quorum
            # queue's `delivery_limit` (too_many_attempts, attempts.py).
            broker_reason=attempts.death_reason(message.headers),
        )
        if job.chunk is None:  # a chunk job is no client's: only its marker tells its parent
            self.remember(JobRecord.queued(job))
            self.ingest(failure)
        # Recorded in the job's files too: an expired job has no worker to record it, and a
        # server started later must not take it for queued (markers.py).
        await self._on_dead_letter_seen(failure)


def _adds_nothing(record: JobRecord | None, event: JobEvent) -> bool:
    """A state event repeating what the record holds: not folded, not forwarded."""
    return (
        isinstance(event, StateEvent)
        and record is not None
        and record.tenant is not None
        and (record.state, record.attempt, record.worker)
        == (event.state, event.attempt, event.worker)
    )


def _terminal(record: JobRecord | None) -> bool:
    return record is not None and record.state.terminal
