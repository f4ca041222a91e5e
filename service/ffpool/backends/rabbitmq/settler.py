"""Settling a job's deliveries: record the outcome first, then (only then) ack.

The outcome is recorded before the ack: `completed` is published with a confirm, batched with
other slots' events (outbox.py; every server folds it into its records); a deterministic
`failed` goes to the DLQ with its reason (confirmed) and is published. A hand-back
(drain/stop) republishes the job with the same attempt (in quorum mode, where an attempt is a
run that started, its started marker lowered first: attempts.py). Only after that are the
job's deliveries acked. A completed job's marker file is
written before its outcome is published: a redelivered copy (broker trouble, or a crash between
the confirm and the ack) is recognised by it on any worker sharing MEDIA_ROOT, else by asking
the servers (see worker_pool.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from aio_pika.abc import AbstractIncomingMessage

from ffpool import logs
from ffpool.backends.base import NO_NOTIFIER, BackendError, JobNotifier
from ffpool.backends.rabbitmq import attempts, wire
from ffpool.backends.rabbitmq.job_run import Crash, Lost, Outcome, Run
from ffpool.backends.rabbitmq.markers import JobMarkers
from ffpool.backends.rabbitmq.outbox import Outbox, route_of
from ffpool.backends.rabbitmq.publisher import Publisher
from ffpool.domain.events import (
    CancelledEvent,
    CompletedEvent,
    FailedEvent,
    JobEvent,
    JobState,
    StateEvent,
)

log = logs.get(__name__)
SETTLE_ATTEMPTS = 6  # x broker timeout: how long an outcome waits for a reconnecting broker


class Settler:
    def __init__(
        self,
        publisher: Publisher,
        markers: JobMarkers,
        timeout: float,
        outbox: Outbox,
        notifier: JobNotifier = NO_NOTIFIER,
    ) -> None:
        self._notifier = notifier
        self._publisher = publisher
        self._markers = markers
        self._outbox = outbox
        self._timeout = timeout

    async def settle(self, run: Run, outcome: Outcome) -> None:
        match outcome:
            case CompletedEvent():
                # The marker first, always: a kill -9 between the outcome's confirm and the
                # ack leaves a redelivery that no worker's memory (and maybe no server) knows.
                await self._markers.mark_completed(outcome)
                await self._record(run, outcome)
            case FailedEvent():
                await self.dead_letter(run, outcome)
            case CancelledEvent():
                await self._markers.mark_cancelled(run.job.id)  # as for completed, above
                await self._record(run, outcome)
            case Crash():
                await nack_all(run.deliveries, self._timeout)
            case Lost():
                # The lost delivery cannot be settled; a copy redelivered on the new channel
                # while this run stopped can, and goes back to the queue.
                log.warning(
                    "connection lost: job stopped, the broker redelivers it", job_id=run.job.id
                )
                if not await self._lost_copy(run):
                    await nack_all(run.deliveries, self._timeout)
            case None:
                await self.hand_back(run, ran=True)

    async def dead_letter(self, run: Run, failure: FailedEvent) -> None:
        headers = attempts.failure_headers(failure.code, failure.message, run.attempt)
        headers.update(wire.job_headers(run.job))  # a chunk job stays out of older workers
        body = run.job.model_dump_json().encode()
        if await self._retrying(lambda: self._publisher.publish_dead_letter(body, headers)):
            await self._markers.mark_failed(failure)  # for servers that missed the event
            await self._record(run, failure)
        else:
            await nack_all(run.deliveries, self._timeout)

    async def hand_back(self, run: Run, *, ran: bool = False) -> None:
        """Back to the queue with the same attempt: a drain never counts against a job. In
        quorum mode a run that started (`ran`) recorded its attempt as started: that record is
        lowered to attempt - 1 BEFORE the copy exists, so the copy is this attempt again
        (attempts.quorum_attempt); a failed write makes the drain count, nothing worse."""
        if ran and self._publisher.quorum:
            await self._mark_started(run, run.attempt - 1)
        if await self._republish(run, "hand-back", backoff_s=0.0):
            log.info("job handed back to the queue", job_id=run.job.id, attempt=run.attempt)
            if run.notified:
                await self._notify_state(run, JobState.QUEUED)

    async def _lost_copy(self, run: Run) -> bool:
        """Quorum: a copy redelivered while the lost run stopped is republished as the next
        attempt (the lost run started: it counts once), then every delivery acked (the lost
        one's ack is a no-op on its dead channel): a nack would add a return to the copy's
        `x-delivery-count`, the backstop's count. False (nothing done) without such a copy:
        the broker has the job."""
        copy = run.deliveries[-1]
        if len(run.deliveries) < 2 or not self._publisher.quorum:
            return False
        if not attempts.broker_counted(copy.headers, quorum=True):
            return False  # a classic queue kept as it is: a nack counts once there
        run.attempt += 1
        await self._republish(run, "lost", backoff_s=0.0)
        return True

    async def retry(self, run: Run) -> None:
        """A redelivered job: republish it counted as the next attempt, then ack the copy.
        A refused republish waits a second first: no hot requeue loop while the broker
        refuses publishes."""
        if await self._republish(run, "retry", backoff_s=1.0):
            await self._notify_state(run, JobState.QUEUED)

    async def started(self, run: Run) -> None:
        """Before the job runs: in quorum mode its attempt recorded as started (the attempt
        count, attempts.py), then its `running` webhook (docs/webhooks.md)."""
        if self._publisher.quorum:
            await self._mark_started(run, run.attempt)
        run.notified = await self._notify_state(run, JobState.RUNNING)

    async def _mark_started(self, run: Run, attempt: int) -> None:
        """Best effort: a run goes on without its record (the broker's delivery limit is the
        backstop of a count that missed it)."""
        try:
            written = await self._markers.mark_started(run.job.id, attempt)
        except Exception as exc:  # a marker store's bug must not cost the run
            log.warning("start not recorded", job_id=run.job.id, error=type(exc).__name__)
            return
        if not written:
            log.warning("start not recorded", job_id=run.job.id, attempt=attempt)

    async def _notify_state(self, run: Run, state: JobState) -> bool:
        """A state webhook, best effort: the job goes on whether or not it was queued."""
        if not self._notifier.wants(run.job):
            return False
        worker = run.worker if state is JobState.RUNNING else None
        event = StateEvent.of(run.job, state, attempt=run.attempt, worker=worker)
        try:
            await self._notifier.notify(run.job, event)
        except (BackendError, TimeoutError) as exc:
            log.warning("webhook not queued", job_id=run.job.id, error=type(exc).__name__)
            return False
        return True

    async def _republish(self, run: Run, why: str, *, backoff_s: float) -> bool:
        """Republish the job with `run.attempt`, then ack its deliveries; if the broker
        refuses, requeue them instead (after `backoff_s`). True when republished."""
        try:
            await self._publisher.publish_job(
                run.job, run.attempt, wait_s=self._timeout, republished=True
            )
        except BackendError as exc:
            log.warning("republish failed, requeueing", why=why, job_id=run.job.id, error=str(exc))
            await asyncio.sleep(backoff_s)
            await nack_all(run.deliveries, self._timeout)
            return False
        await ack_all(run.deliveries, self._timeout)
        return True

    async def _record(self, run: Run, event: JobEvent) -> bool:
        """Publish the outcome (confirmed), then ack; if it cannot be published, requeue.
        True when both went through. The job's webhook, if any, is queued before the ack too:
        it is part of the outcome (docs/webhooks.md)."""
        if isinstance(event, CompletedEvent | FailedEvent | CancelledEvent) and (
            self._notifier.wants(run.job)
        ):
            outcome = event
            if not await self._retrying(lambda: self._notifier.notify(run.job, outcome)):
                await nack_all(run.deliveries, self._timeout)
                return False
        if await self._retrying(lambda: self._outbox.put(event, route_of(run.job))):
            return await ack_all(run.deliveries, self._timeout)
        await nack_all(run.deliveries, self._timeout)
        return False

    async def _retrying(self, call: Callable[[], Coroutine[Any, Any, None]]) -> bool:
        for left in range(SETTLE_ATTEMPTS, 0, -1):
            try:
                await call()
                return True
            except BackendError as exc:
                log.warning("recording an outcome failed", error=str(exc), retries_left=left - 1)
                if left > 1:
                    await asyncio.sleep(min(self._timeout, 2.0 ** (SETTLE_ATTEMPTS - left)))
        return False


async def ack_all(deliveries: list[AbstractIncomingMessage], timeout: float) -> bool:
    """Ack every delivery of a job; False if any could not be (it will be redelivered)."""
    ok = True
    for message in deliveries:
        try:
            async with asyncio.timeout(timeout):
                await _ack(message)
        except Exception as exc:  # a stale delivery or a closed channel: log, go on
            log.debug("ack failed; the broker redelivers it", error=type(exc).__name__)
            ok = False
    return ok


async def _ack(message: AbstractIncomingMessage) -> None:
    """Queue the ack without waiting for it to reach the socket (aio-pika's `ack` drains the
    writer each time, one system call per job): the ack then shares a write with the others of
    this loop turn (transport.py). An ack lost with the connection means a redelivery, which
    the completed marker and the servers' records recognise either way."""
    if message.delivery_tag is None:
        return
    await message.channel.basic_ack(delivery_tag=message.delivery_tag, wait=False)


async def nack_all(deliveries: list[AbstractIncomingMessage], timeout: float) -> None:
    for message in deliveries:
        try:
            async with asyncio.timeout(timeout):
                await message.nack(requeue=True)
        except Exception as exc:  # a stale delivery or a closed channel: log, go on
            log.debug("nack failed; the broker redelivers it", error=type(exc).__name__)
