"""The worker pool: one consumer per job slot, each on its own channel with prefetch 1.

`rabbitmqctl list_queues name messages consumers` therefore shows one consumer per slot
(`ffmpeg_job_queue 0 4` for a process with 4 workers), and a slot never holds a job it has not
started: a later high-priority job is not stuck behind a prefetched one. Deliveries are
handled in tasks this pool owns (aiormq cancels a channel's own consumer tasks when the
channel closes, which must not kill a running FFmpeg on a broker blip), and acked or nacked
explicitly: `message.process()` would reject, i.e. dead-letter, a job on CancelledError.
The consumers themselves, and the slots lent while a job waits for its chunks, are slots.py's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from ffpool import logs
from ffpool.backends import job_metrics
from ffpool.backends.base import NO_NOTIFIER, JobExecutor, JobMetrics, JobNotifier
from ffpool.backends.rabbitmq import attempts, unread, wire
from ffpool.backends.rabbitmq.attempts import Action
from ffpool.backends.rabbitmq.job_run import ProgressSender, Run, Stop, execute
from ffpool.backends.rabbitmq.markers import JobMarkers
from ffpool.backends.rabbitmq.outbox import Outbox
from ffpool.backends.rabbitmq.publisher import Publisher
from ffpool.backends.rabbitmq.run_events import RunEvents, routed, state_event
from ffpool.backends.rabbitmq.runs import RunLedger
from ffpool.backends.rabbitmq.settler import Settler, nack_all
from ffpool.backends.rabbitmq.slots import make_slots
from ffpool.domain.events import CancelledEvent, CompletedEvent, FailedEvent, JobRecord, JobState
from ffpool.domain.jobs import Job
from ffpool.settings import Settings
from ffpool.topology import Topology

log = logs.get(__name__)
Lookup = Callable[[str], Awaitable[JobRecord | None]]
"""A job's record from the servers, for a delivery that may be a duplicate."""


class WorkerPool:
    def __init__(
        self,
        settings: Settings,
        topo: Topology,
        publisher: Publisher,
        executor: JobExecutor,
        metrics: JobMetrics,
        *,
        markers: JobMarkers,
        ledger: RunLedger,
        lookup: Lookup,
        notifier: JobNotifier = NO_NOTIFIER,
    ) -> None:
        self._settings = settings
        self._topo = topo
        self._publisher = publisher
        self._executor = executor
        self._metrics = metrics
        self._limit_s: float | None = None
        self._timeout = settings.broker_timeout_seconds
        self.markers = markers
        self._outbox = Outbox(publisher.publish_events, routed(publisher))
        self._events = RunEvents(publisher, self._outbox)
        self._settler = Settler(publisher, markers, self._timeout, self._outbox, notifier)
        self._slots = make_slots(
            topo,
            self._timeout,
            self._on_message,
            self._give_back,
            lambda slot: self._busy_slots.get(slot),
        )
        self._ledger = ledger
        self._runs = ledger.runs
        self._handlers: set[asyncio.Task[None]] = set()
        self._busy_slots: dict[int, asyncio.Task[None]] = {}
        self._draining = False
        self._lookup = lookup
        self.conn: AbstractRobustConnection | None = None  # once started

    async def start(
        self, conn: AbstractRobustConnection, count: int, limit_s: float | None = None
    ) -> None:
        """Consume with `count` slots; `limit_s`: the broker's consumer timeout imposes a run
        limit below the job timeout (broker_limits.py), else None."""
        self._limit_s = limit_s
        self.conn = conn
        conn.close_callbacks.add(self._on_connection_lost)
        await self._slots.start(conn, count)

    def lend_slot(self) -> AbstractAsyncContextManager[None]:
        """One consumer more while inside (slots.py); none while draining."""
        return self._slots.lend(self._busy_slots.get, lambda: self._draining)

    async def _give_back(
        self, body: bytes, headers: dict[str, Any], priority: int | None, message_id: str | None
    ) -> None:
        """A delivery a slot took but does not run, back to its band (band_slots.py)."""
        await self._publisher.republish_unread(body, headers, priority, message_id)

    def _on_connection_lost(self, _sender: object, exc: BaseException | None) -> None:
        """The deliveries of the running jobs died with the connection and the broker requeues
        them (maybe to another worker): stop the runs, so no job runs twice at once. Their
        run scratch is removed as on a cancel; the redelivery counts as an attempt."""
        if self._draining or not self._runs:
            return
        log.warning(
            "worker connection lost: handing running jobs back to the broker",
            running=len(self._runs),
            error=type(exc).__name__,
        )
        for run in list(self._runs.values()):
            run.request_stop(Stop.LOST)

    def busy_jobs(self) -> int:
        return len(self._runs)

    def busy_slots(self) -> int:
        """Slots handling a delivery: its run, or the settling of one that never ran."""
        return len(self._busy_slots)

    async def drain(self, timeout: float) -> None:
        """Stop taking jobs now; let running ones finish within `timeout`; hand the rest back
        to the queue with their attempt unchanged (never the DLQ)."""
        self._draining = True
        await self._slots.cancel_all()
        busy = set(self._handlers)
        if busy:
            log.info("draining", running=len(self._runs), timeout_s=timeout)
            await asyncio.wait(busy, timeout=timeout)
        for run in list(self._runs.values()):
            run.request_stop(Stop.HAND_BACK)
        if self._handlers:
            grace = self._settings.cancel_grace_seconds + 2 * self._timeout
            await asyncio.wait(set(self._handlers), timeout=grace)

    async def _on_message(self, slot: int, message: AbstractIncomingMessage) -> None:
        before = self._busy_slots.get(slot)
        if before is not None:
            # A delivery restored after a reconnect while the slot's lost job still stops: a
            # slot never runs two jobs, so it waits for that one to settle. Handing it back
            # would bring it straight back to this consumer, round and round, and a nack
            # would also count against its job.
            log.info(
                "slot busy: the delivery waits for it", slot=slot, message_id=message.message_id
            )
        task = asyncio.create_task(self._handle(slot, message, after=before))
        self._busy_slots[slot] = task
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)
        task.add_done_callback(lambda done: self._free(slot, done))

    def _free(self, slot: int, done: asyncio.Task[None]) -> None:
        if self._busy_slots.get(slot) is done:
            del self._busy_slots[slot]

    async def _handle(
        self, slot: int, message: AbstractIncomingMessage, after: asyncio.Task[None] | None = None
    ) -> None:
        if after is not None:
            await asyncio.wait({after})
        if not wire.readable(message.headers):
            await unread.leave_for_newer(self._publisher, message, self._timeout)
            return
        job = attempts.parse_job(message.body)
        if job is None:
            log.error("dead-lettering an unreadable job message", message_id=message.message_id)
            await message.reject(requeue=False)
            return
        if (running := self._runs.get(job.id)) is not None:
            # A copy of a job running here (redelivered after a reconnect): settle it together.
            running.deliveries.append(message)
            return
        attempt = attempts.current_attempt(message.headers, self._topo.quorum)
        run = Run(job, attempt, f"{self._settings.instance_name}/{slot}", [message])
        if self._draining:
            await self._settler.hand_back(run)
            return
        # Claimed before the first await: a copy delivered to another slot while this one
        # checks the markers joins this run instead of starting a second one.
        self._runs[job.id] = run
        try:
            await self._decide_and_dispatch(run, message)
        except Exception:
            # A bug costs these deliveries a requeue, never strands them: an unsettled one
            # holds its slot (prefetch 1) and its job until the connection closes.
            log.exception("handling a job failed: requeueing it", job_id=job.id)
            await nack_all(run.deliveries, self._timeout)
        finally:
            del self._runs[job.id]

    async def _decide_and_dispatch(self, run: Run, message: AbstractIncomingMessage) -> None:
        job, attempt = run.job, run.attempt
        redelivered = bool(message.redelivered)
        # The markers are read on every delivery (a stat in a thread, cheap next to an FFmpeg
        # run): a job cancelled while queued, before this worker started, carries no other
        # trace. Asking the servers is for possible duplicates only.
        keyed = job.idempotency_key is not None
        # The servers never hear of chunk jobs: their markers are all there is to read.
        ask = job.chunk is None and attempts.maybe_duplicate(redelivered, message.headers, keyed)
        done, cancelled = await self._known_outcome(job.id, ask=ask)
        if done is None and not cancelled:
            cancelled = await self._orphan(job)
        counted = attempts.broker_counted(message.headers, self._topo.quorum)
        if counted and attempts.may_have_run(redelivered, message.headers):
            # Quorum: runs started count, not the broker's returns (attempts.py).
            attempt = attempts.quorum_attempt(attempt, await self.markers.started(job.id))
        decision = attempts.decide(
            redelivered=redelivered,
            attempt=attempt,
            max_attempts=self._topo.max_attempts,
            completed=self._ledger.completed(job.id) is not None or done is not None,
            cancelled=self._ledger.cancelled(job.id) or cancelled,
            counted=counted,
        )
        run.attempt = decision.attempt
        await self._dispatch(decision.action, run)

    async def _dispatch(self, action: Action, run: Run) -> None:
        job_id = run.job.id
        match action:
            case Action.RUN:
                await self._run(run)
            case Action.RETRY:
                log.warning(
                    "job redelivered: counting an attempt", job_id=job_id, attempt=run.attempt
                )
                await self._settler.retry(run)
                await self._events.state(run, JobState.QUEUED)
            case Action.POISON:
                log.error("poison job: too many attempts", job_id=job_id, attempt=run.attempt)
                await self._settler.dead_letter(run, attempts.poison_failure(job_id, run.attempt))
            case Action.SKIP_COMPLETED:
                log.info("duplicate delivery of a completed job: not run again", job_id=job_id)
                done = await self._completed_event(job_id)
                await self._settler.settle(run, done or _completed_unknown(job_id))
            case Action.SKIP_CANCELLED:
                await self._settler.settle(run, CancelledEvent(job_id=job_id))

    async def _run(self, run: Run) -> None:
        job = run.job
        # Every event of a run goes on the outcome's channel: the broker keeps one channel's
        # messages in order but not two channels', and a progress sample that trailed the
        # outcome would be dropped by servers that already saw the job finish.
        send = self._events.in_order(job)
        progress = ProgressSender(send, state_event(run, JobState.RUNNING), publish_last=send)
        log.info("job started", job_id=job.id, attempt=run.attempt, worker=run.worker)
        await self._settler.started(run)
        job_metrics.started(self._metrics, job, run.attempt)
        outcome = await execute(run, self._executor, progress, self._limit_s)
        await progress.close(self._timeout)
        if isinstance(outcome, CompletedEvent):
            self._ledger.remember_completed(outcome)
        await self._settler.settle(run, outcome)
        if outcome is None and progress.announced:
            await self._events.state(run, JobState.QUEUED)  # handed back: waiting again
        if isinstance(outcome, CompletedEvent | FailedEvent | CancelledEvent) and job.chunk is None:
            seconds = time.monotonic() - run.started
            job_metrics.finished(self._metrics, job, outcome, seconds)
            log.info("job finished", job_id=job.id, state=outcome.type, seconds=round(seconds, 3))

    async def _orphan(self, job: Job) -> bool:
        """A chunk job whose parent already has its outcome (failed, cancelled: its chunks'
        work is of no use any more) is settled as cancelled, never run."""
        if job.chunk is None:
            return False
        if found := await self.markers.outcomes([job.chunk.parent]):
            log.info("chunk of a finished job: not run", job_id=job.id, parent=found[0].job_id)
            return True
        return False

    async def _completed_event(self, job_id: str) -> CompletedEvent | None:
        return self._ledger.completed(job_id) or (await self._known_outcome(job_id))[0]

    async def _known_outcome(
        self, job_id: str, *, ask: bool = True
    ) -> tuple[CompletedEvent | None, bool]:
        """(completed event, cancelled) of a job that may have run before: this worker's
        memory, the marker files, else (if `ask`) the servers' records (a lookup)."""
        if (done := self._ledger.completed(job_id)) is not None:
            return done, False
        done, cancelled = await self.markers.check(job_id)
        if ask and done is None and not cancelled:
            record = await self._lookup(job_id)
            if record is not None:
                return record.result, record.state is JobState.CANCELLED
        return done, cancelled


def _completed_unknown(job_id: str) -> CompletedEvent:
    return CompletedEvent(job_id=job_id, processing_time_s=0.0)
